"""The model-backend interface: one turn in, a stream of events out.

A backend gets the whole conversation each turn (system prompt, messages, tool specs,
settings) and yields ``TextDelta`` as text arrives, ``ToolCallRequest`` per tool the model
wants, and exactly one ``TurnEnd`` with the stop reason and the turn's usage. Vendors'
wire formats stay inside their modules; the runner only sees these types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cairn.domain.agents import ModelSettings
from cairn.domain.runs import Usage
from cairn.domain.tools import ToolSpec


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """The model asks for one tool call."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    kind: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the model's text, in order."""

    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class TurnEnd:
    """The turn is over. ``stop_reason`` is the vendor's, normalised to ``end_turn``,
    ``tool_use``, ``max_tokens`` or ``other``; ``model`` is the model that answered, as the
    vendor names it, when it says (exported as ``gen_ai.response.model``)."""

    stop_reason: str
    usage: Usage
    model: str | None = field(default=None, compare=False)  # metadata, not the answer
    kind: Literal["turn_end"] = "turn_end"


ModelEvent = TextDelta | ToolCallRequest | TurnEnd


@dataclass(frozen=True, slots=True)
class ToolResultMessage:
    """The outcome of one tool call, sent back to the model on the next turn."""

    call_id: str
    name: str
    content: Any
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the conversation. ``tool_calls`` only on assistant messages,
    ``tool_results`` only on the ``tool`` role."""

    role: Literal["user", "assistant", "tool"]
    text: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    tool_results: tuple[ToolResultMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything a backend needs for one turn. ``event_payload`` is given so that the
    offline ``scripted`` backend can template arguments from it; real vendors ignore it."""

    system: str
    messages: list[Message]
    tools: list[ToolSpec]
    settings: ModelSettings
    turn: int
    event_payload: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)


class Credentials(Protocol):
    """Where a backend gets its API key: the sandbox's encrypted credential store first,
    then the environment (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``, ``GOOGLE_API_KEY``)."""

    def api_key(self, backend: str) -> str | None:
        """The key for ``backend``, or ``None`` when none is configured."""
        ...


ENV_KEYS: dict[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
    "google": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
}


class EnvCredentials:
    """Credentials from environment variables only (the embedded default, and tests)."""

    def __init__(self, extra: dict[str, str] | None = None) -> None:
        self._extra = dict(extra or {})

    def api_key(self, backend: str) -> str | None:
        """``extra[backend]`` if given, else the first of the backend's variables that is set."""
        import os

        if backend in self._extra:
            return self._extra[backend]
        for name in ENV_KEYS.get(backend, ()):
            value = os.environ.get(name)
            if value:
                return value
        return None


class ModelBackend(Protocol):
    """A model vendor's adapter. ``stream`` must honour cancellation (close the vendor stream)."""

    name: str

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Run one turn and yield its events; raise ``cairn.errors.ModelError`` on failure."""
        ...
