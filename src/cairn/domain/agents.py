"""Agents: stored configurations that fire on events.

Validation lives here, next to the fields, so the CLI, the API and the store all reject
the same inputs with the same one-line messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from cairn.errors import InvalidModelSettings, InvalidSlug
from cairn.text import from_record, record

AgentStatus = Literal["active", "archived"]

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def validate_slug(slug: str) -> str:
    """Return ``slug`` if it is a valid wire id, else raise ``InvalidSlug`` saying why."""
    if not SLUG_PATTERN.match(slug):
        raise InvalidSlug(
            f"invalid slug {slug!r}: use 1-64 characters of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit"
        )
    return slug


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """How an agent talks to its model. ``backend`` names a registered model backend.

    ``script`` is used only by the ``scripted`` backend (see docs/scripted.md);
    ``base_url`` points an OpenAI-compatible backend at a server of the user's choice.
    """

    backend: str = "scripted"
    model: str = "scripted-1"
    temperature: float | None = None
    max_tokens: int = 1024
    max_turns: int = 8
    timeout_s: float = 120.0
    base_url: str | None = None
    script: Any = None

    def __post_init__(self) -> None:
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise InvalidModelSettings(
                f"temperature {self.temperature} is out of range: use 0.0 to 2.0"
            )
        if self.max_tokens < 1:
            raise InvalidModelSettings(f"max_tokens {self.max_tokens} must be at least 1")
        if not 1 <= self.max_turns <= 100:
            raise InvalidModelSettings(f"max_turns {self.max_turns} is out of range: use 1 to 100")
        if not 0 < self.timeout_s <= 3600:
            raise InvalidModelSettings(
                f"timeout_s {self.timeout_s} is out of range: use more than 0 and at most 3600"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the ledger and shown by ``--json`` (``base_url`` and
        ``script`` only when set)."""
        data = record(self)
        for optional in ("base_url", "script"):
            if data[optional] is None:
                del data[optional]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSettings:
        """Build settings from stored or user JSON, naming any unknown key."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidModelSettings(
                f"unknown model setting {unknown[0]!r}; known settings: {', '.join(sorted(known))}"
            )
        try:
            return cls(**data)
        except TypeError as exc:  # a value of the wrong type, e.g. max_turns="x"
            raise InvalidModelSettings(f"invalid model settings: {exc}") from None

    def updated(self, **changes: Any) -> ModelSettings:
        """A copy with only the named fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True, slots=True)
class Agent:
    """A stored agent. ``tool_sources`` ``None`` means the sandbox's default set,
    ``[]`` means tool-less by choice; ``tool_allowlist`` ``[]`` means every resolved tool."""

    agent_id: str
    sandbox_id: str
    slug: str
    name: str
    description: str
    system_prompt: str
    tool_sources: list[str] | None
    tool_allowlist: list[str]
    model_settings: ModelSettings
    version: int = 1
    status: AgentStatus = "active"
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form shown by ``--json`` and served by the API."""
        return record(self) | {"model_settings": self.model_settings.to_dict()}


def agent_from_dict(data: dict[str, Any]) -> Agent:
    """Inverse of ``Agent.to_dict`` (for clients rendering what the API returned)."""
    return from_record(
        Agent,
        data,
        tool_allowlist=list(data["tool_allowlist"]),
        model_settings=ModelSettings.from_dict(data["model_settings"]),
    )
