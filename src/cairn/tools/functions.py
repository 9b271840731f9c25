"""The base of the sources whose tools are Python functions of this process (``builtin``,
and ``cairn``, Cairn's own operations): nothing to connect to, a fixed list of specs, one
handler per tool, and every failure handed back to the model as the call's error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Self

from cairn.domain.runs import ToolErrorKind
from cairn.domain.sources import DataSource
from cairn.domain.tools import ToolSpec
from cairn.tools.base import ToolContext, ToolOutput

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class ToolCallError(Exception):
    """A call a function tool will not (or cannot) complete; its message goes back to the
    model as the call's error, of ``kind`` (``bad_arguments`` unless it says otherwise)."""

    kind: ToolErrorKind = "bad_arguments"

    def __init__(self, message: str, *, kind: ToolErrorKind | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class FunctionSource:
    """A source whose tools are described by ``specs``, each run by the subclass's method
    of the tool's name with a leading underscore (``_clock_now`` for ``clock_now``)."""

    kind: ClassVar[str]
    specs: ClassVar[tuple[ToolSpec, ...]]
    inline = True  # nothing to connect to: resolution builds it in the run's own task

    def __init__(self, source: DataSource, context: ToolContext) -> None:
        self.source_id = source.source_id
        self.label = source.label
        self.sandbox_id = source.sandbox_id
        self._context = context
        self.handlers: dict[str, Handler] = {
            spec.name: getattr(self, f"_{spec.name}") for spec in self.specs
        }

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def list_tools(self) -> list[ToolSpec]:
        """Every tool of the source; they need nothing outside the process to be listed."""
        return list(self.specs)

    def check(self, name: str, arguments: dict[str, Any]) -> None:
        """Raise ``ToolCallError`` to refuse a call before its handler runs."""

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        """Run one tool; an unknown name, a refusal or a ``ToolCallError`` is the call's error."""
        handler = self.handlers.get(name)
        if handler is None:
            return ToolOutput(
                error=f"unknown {self.kind} tool {name!r}", error_kind="bad_arguments"
            )
        try:
            self.check(name, arguments)
            return ToolOutput(result=await handler(arguments))
        except ToolCallError as exc:
            return ToolOutput(error=str(exc), error_kind=exc.kind)
