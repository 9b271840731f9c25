"""Wrappers that change what a source shows without touching the source itself.

Prefixing by namespace, a per-source allowed-tools list and a calls-per-minute cap are
composed around any ``ToolSource`` (as pydantic-ai composes toolsets), so each kind of
source stays a plain adapter to its protocol.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from cairn.domain.tools import ToolSpec
from cairn.tools.base import ToolOutput, ToolSource


class _Wrapper:
    """Delegates lifecycle and identity to the wrapped source."""

    def __init__(self, inner: ToolSource) -> None:
        self.inner = inner
        self.source_id = inner.source_id
        self.kind = inner.kind
        self.label = inner.label

    async def __aenter__(self) -> _Wrapper:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.inner.__aexit__(*exc_info)

    async def list_tools(self) -> list[ToolSpec]:
        return await self.inner.list_tools()

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        return await self.inner.call_tool(name, arguments)


class PrefixedSource(_Wrapper):
    """Shows every tool as ``<namespace>_<name>`` so two servers' ``search`` tools cannot clash."""

    def __init__(self, inner: ToolSource, namespace: str) -> None:
        super().__init__(inner)
        self.prefix = f"{namespace}_"

    async def list_tools(self) -> list[ToolSpec]:
        return [
            ToolSpec(self.prefix + spec.name, spec.description, spec.input_schema)
            for spec in await self.inner.list_tools()
        ]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        return await self.inner.call_tool(name.removeprefix(self.prefix), arguments)


class SourceFilteredSource(_Wrapper):
    """Keeps only the tools a source's own ``allowed_tools`` names (raw names, before prefixing).

    ``hidden`` holds what it removed, for the trace."""

    def __init__(self, inner: ToolSource, allowed: list[str]) -> None:
        super().__init__(inner)
        self.allowed = set(allowed)
        self.hidden: list[str] = []

    async def list_tools(self) -> list[ToolSpec]:
        specs = await self.inner.list_tools()
        self.hidden = [spec.name for spec in specs if spec.name not in self.allowed]
        return [spec for spec in specs if spec.name in self.allowed]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        if name not in self.allowed:
            return ToolOutput(
                error=f"tool {name!r} is not in source {self.label!r}'s allowed tools",
                error_kind="not_advertised",
            )
        return await self.inner.call_tool(name, arguments)


class RateCappedSource(_Wrapper):
    """At most ``calls_per_minute`` calls in any 60 s window; over it a call errors (no wait).

    Erroring (rather than queueing) lets the model see the cap and lets the run finish; the
    window is kept per source id for the whole process (runs come and go, the cap holds
    across them); several server processes would each allow the cap."""

    _windows: dict[str, deque[float]] = {}  # noqa: RUF012 - shared on purpose, see above

    def __init__(self, inner: ToolSource, calls_per_minute: int) -> None:
        super().__init__(inner)
        self.calls_per_minute = calls_per_minute

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        recent = self._windows.setdefault(self.source_id, deque())
        now = time.monotonic()
        while recent and now - recent[0] >= 60.0:
            recent.popleft()
        if len(recent) >= self.calls_per_minute:
            return ToolOutput(
                error=(
                    f"source {self.label!r} is capped at {self.calls_per_minute} calls per minute"
                ),
                error_kind="rate_capped",
            )
        recent.append(now)
        return await self.inner.call_tool(name, arguments)


def wrap_for_config(source: ToolSource, config: dict[str, Any]) -> ToolSource:
    """Apply the wrappers a source's config asks for, innermost first: filter, cap, prefix."""
    wrapped: ToolSource = source
    if config.get("allowed_tools") is not None:
        wrapped = SourceFilteredSource(wrapped, list(config["allowed_tools"]))
    if config.get("calls_per_minute"):
        wrapped = RateCappedSource(wrapped, int(config["calls_per_minute"]))
    namespace = config.get("namespace")
    if namespace:
        wrapped = PrefixedSource(wrapped, str(namespace))
    return wrapped


def hidden_by_source(source: ToolSource) -> list[str]:
    """The raw names a ``SourceFilteredSource`` anywhere in the chain removed."""
    current: Any = source
    while isinstance(current, _Wrapper):
        if isinstance(current, SourceFilteredSource):
            return current.hidden
        current = current.inner
    return []
