"""Data sources as stored: where tools and events (webhooks, schedules) come from.

A source's ``config`` is what may be shown; its secret (an MCP bearer token, a custom
header's value, environment values for a stdio server) is kept apart, encrypted at rest by
the store, and never appears in ``to_dict``, traces, events or log lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cairn.text import from_record, record

SourceStatus = Literal["active", "error", "revoked"]
Transport = Literal["stdio", "http"]
"""How a user's MCP server is reached: a command run here, or streamable HTTP."""
AuthMode = Literal["none", "bearer", "header"]


@dataclass(slots=True)
class DataSource:
    """A registered source. ``secret`` is decrypted only when the source is built."""

    source_id: str
    sandbox_id: str
    kind: str
    label: str
    config: dict[str, Any]
    status: SourceStatus = "active"
    status_reason: str | None = None
    secret: dict[str, str] = field(default_factory=dict, repr=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    checked_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Shown form: configuration and status. The config names the secret fields kept
        (``secret_fields``), never their values."""
        return record(self, "secret")


def source_from_dict(data: dict[str, Any]) -> DataSource:
    """Inverse of ``DataSource.to_dict`` (without the secret, which is never shown)."""
    return from_record(DataSource, data, config=dict(data["config"]))


CAIRN_SOURCE = "cairn"
"""The kind, the label and the tool namespace of a sandbox's source of Cairn's own operations
(``cairn.services.cairn_ops``): here, so the services that only ask "does this agent use
them?" need not import the operations, which call those services back."""


def uses_cairn_tools(tool_sources: list[str] | None) -> bool:
    """Whether an agent's ``tool_sources`` name Cairn's own operations (by kind or label)."""
    return tool_sources is not None and CAIRN_SOURCE in tool_sources


MAX_LABEL_CHARS = 100
RESERVED_LABELS = frozenset({"builtin", "user_mcp", "webhook", "schedule", "integration", "mcp"})
"""Labels that name a kind of source (``builtin`` is every sandbox's own source): a source
labelled so would be mistaken for one, e.g. show every default agent a false skip."""


def validate_label(label: str) -> str:
    """``label`` if people and lookups can use it: 1 to 100 printable characters, not a
    kind's name, not shaped like a source id; ``UsageError`` saying why otherwise."""
    from cairn.errors import UsageError

    if not label.strip() or len(label) > MAX_LABEL_CHARS:
        raise UsageError(f"a source label must be 1 to {MAX_LABEL_CHARS} characters")
    if any(not char.isprintable() for char in label):
        shown = label.encode("unicode_escape").decode()
        raise UsageError(f"a source label cannot hold control characters, got {shown!r}")
    if label.strip().lower() in RESERVED_LABELS or label.startswith("src_"):
        raise UsageError(f"the label {label!r} is reserved; choose another")
    return label
