"""The tool-source interface every kind implements, and the errors that make a source skip.

A source is an async context manager: ``__aenter__`` connects (spawns a stdio server,
opens an HTTP session), ``list_tools`` says what it offers, ``call_tool`` runs one, and
``__aexit__`` lets go. Resolution keeps the sources of a run open for the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from cairn.domain.runs import ToolErrorKind
from cairn.domain.tools import ToolSpec
from cairn.domain.trace import SkipReason


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """What a tool call returned: a JSON-able result, or an error message for the model and
    its ``error_kind`` (``cairn.domain.runs.ToolErrorKind``), which diagnosis reads."""

    result: Any = None
    error: str | None = None
    error_kind: ToolErrorKind | None = None


class SourceUnavailable(Exception):
    """Raised by a source that cannot build; resolution records it as a skip, never a crash."""

    def __init__(self, reason: SkipReason, message: str) -> None:
        super().__init__(message)
        self.reason: SkipReason = reason
        self.message = message


@runtime_checkable
class ToolSource(Protocol):
    """One place tools come from. Implementations live one per module under ``cairn.tools``."""

    source_id: str
    kind: str
    label: str

    async def __aenter__(self) -> ToolSource: ...

    async def __aexit__(self, *exc_info: Any) -> None: ...

    async def list_tools(self) -> list[ToolSpec]:
        """The tools this source offers now; raise ``SourceUnavailable`` to be skipped."""
        ...

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        """Run tool ``name`` (as this source lists it); errors come back in ``ToolOutput.error``."""
        ...


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Process-wide settings a source may need when it is built (from ``cairn.config``)."""

    http_allowed_hosts: tuple[str, ...] = ()
    http_timeout_s: float = 10.0
    http_max_response_bytes: int = 65_536
    resolve_timeout_s: float = 10.0


async def close_quietly(source: ToolSource, within_s: float) -> None:
    """Exit ``source``, shielded from cancellation and given ``within_s`` at most: closing
    a broken server must fail neither a finished run nor the pool."""
    import anyio  # not at import: this module is on the CLI's cold path

    with anyio.move_on_after(within_s, shield=True):
        try:
            await source.__aexit__(None, None, None)
        except Exception:
            pass
