"""Wire models for the Concierge (``POST /ask``): the API, the SDK and ``cairn ask --json``.

A module of ``cairn.wire`` (as ``cairn.wire.connections`` is) so the Concierge owns its
shapes; unknown request fields are refused.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from cairn.wire import Wire


class AskRequest(Wire):
    """A question in plain English. ``offline`` skips a configured Concierge agent and uses
    the deterministic interpreter. ``yes`` confirms a test fire of an agent whose tools
    may act (without it, the answer says what would run and asks)."""

    question: str = Field(min_length=1, description="e.g. Which agent used the most tokens today?")
    offline: bool = False
    yes: bool = False


class Answer(BaseModel):
    """What the Concierge answered. ``run_ids`` are the runs it cites; ``commands`` are CLI
    commands it suggests (destructive ones are only ever suggested, never run); ``mode``
    says who answered (``agent``: the Concierge agent, whose own run is
    ``concierge_run_id``; ``offline``: the interpreter)."""

    text: str
    run_ids: list[str]
    commands: list[str]
    mode: Literal["offline", "agent"]
    concierge_run_id: str | None = None
    intent: str = Field(description="What the question was taken to ask (agent: the agent's)")
