"""Resolve an agent's tool catalog and explain it: the tool-resolution trace.

Steps, each recorded in the trace:

1. *Select* sources from the agent's ``tool_sources`` (``None``: the sandbox default, which
   is ``builtin`` plus every MCP source not revoked; ``[]``: none; entries are kinds,
   source ids or labels). A named source that does not exist or was revoked is a skip.
2. *Build* every selected source concurrently, each under ``resolve_timeout_s``; one that
   raises or hangs is a skip with a reason and costs only itself.
3. *Filter* by the agent's allowlist: real tools not listed go to ``allowlist_filtered_out``;
   entries that match nothing go to ``allowlist_missing_entries`` with the closest real
   names. Entries may be exact names or shell-style patterns (``crm_*``).

Each source is entered and left inside its own task, because MCP clients hold anyio task
groups that must be exited by the task that entered them; the sources stay open until the
``resolve_tools`` context exits, so a run can call them.

With a session pool (``cairn.tools.pool``, the server's), MCP sources are leased warm
instead: no process is spawned and the listing is the cached one, so resolution costs the
lookups and the allowlist. A source that had to connect says so in ``cold_start_ms``.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from cairn.domain.sources import DataSource
from cairn.domain.tools import ToolSpec
from cairn.domain.trace import (
    MissingEntry,
    SkipReason,
    SourceResolved,
    SourceSkipped,
    ToolResolutionTrace,
)
from cairn.tools.base import (
    SourceUnavailable,
    ToolContext,
    ToolOutput,
    ToolSource,
    close_quietly,
)
from cairn.tools.builtin import BUILTIN_SOURCE_ID
from cairn.tools.kinds import source_kinds
from cairn.tools.pool import PooledSource, SessionPool
from cairn.tools.wrappers import hidden_by_source, wrap_for_config

DEFAULT_SOURCE_KINDS = ("builtin", "user_mcp", "integration")
KIND_ALIASES = {"integrations": "integration"}  # the spelling SPEC.md's examples use
CLOSE_S = 5.0  # to close a source after its run


@dataclass(slots=True)
class ResolvedTools:
    """What a run may use: the advertised specs, how to call them, and why it is so."""

    trace: ToolResolutionTrace
    specs: list[ToolSpec]
    _routes: dict[str, ToolSource] = field(default_factory=dict)

    def is_advertised(self, name: str) -> bool:
        """Whether the model was told about ``name`` (only those may be executed)."""
        return name in self._routes

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        """Call an advertised tool through its source; the caller checks ``is_advertised`` first."""
        return await self._routes[name].call_tool(name, arguments)


def select_sources(
    selection: list[str] | None, available: list[DataSource]
) -> tuple[list[DataSource], list[SourceSkipped]]:
    """Pick the sources an agent's ``tool_sources`` names; unknown or revoked ones become skips."""
    entries = list(DEFAULT_SOURCE_KINDS) if selection is None else selection
    chosen: dict[str, DataSource] = {}
    skipped: list[SourceSkipped] = []
    for entry in entries:
        entry = KIND_ALIASES.get(entry, entry)
        matches = [s for s in available if entry in (s.source_id, s.kind, s.label)]
        by_id = [s for s in matches if entry in (s.source_id, s.label)]
        if not matches:
            if selection is not None:  # the default set may legitimately have no MCP source
                skipped.append(
                    SourceSkipped(
                        entry, entry, entry, "not_found", f"no tool source or kind named {entry!r}"
                    )
                )
            continue
        for source in matches:
            if source.status == "revoked":
                if by_id:  # a kind silently leaves revoked sources out; a named id says why
                    skipped.append(_skip(source, "disabled", f"{source.label}: source was revoked"))
                continue
            chosen.setdefault(source.source_id, source)
    return list(chosen.values()), skipped


def _skip(source: DataSource, reason: SkipReason, message: str) -> SourceSkipped:
    return SourceSkipped(source.source_id, source.kind, source.label, reason, message)


def _too_slow(source: DataSource, timeout_s: float) -> SourceSkipped:
    message = f"{source.label}: did not list its tools within {timeout_s:g} s"
    return _skip(source, "timeout", message)


def allowlist_matches(entry: str, name: str) -> bool:
    """Whether an allowlist entry admits a tool name (exact, or a shell-style pattern)."""
    if any(ch in entry for ch in "*?["):
        return fnmatch.fnmatchcase(name, entry)
    return entry == name


def suggest_tool_names(entry: str, real_names: list[str], limit: int = 3) -> list[str]:
    """The real tool names an operator most likely meant by ``entry``.

    Names that differ only by a namespace prefix come first (``lookup_order`` vs
    ``crm_lookup_order``), then close spellings; failing both, the tools of the entry's
    namespace."""
    suffix = [n for n in real_names if n.endswith("_" + entry) or entry.endswith("_" + n)]
    close = difflib.get_close_matches(entry, real_names, n=limit, cutoff=0.6)
    ordered = list(dict.fromkeys(suffix + close))
    if not ordered and "_" in entry:
        # Nothing alike: offer what the same namespace does have (``orders_create_ticket``
        # → the ``orders_*`` tools), which is where the operator will look next.
        namespace = entry.split("_", 1)[0] + "_"
        ordered = [n for n in real_names if n.startswith(namespace)]
    return ordered[:limit]


def apply_allowlist(
    allowlist: list[str], real_names: list[str]
) -> tuple[list[str], list[str], list[MissingEntry]]:
    """Split real names into (advertised, filtered_out) and report stale entries."""
    if not allowlist:
        return list(real_names), [], []
    advertised = [n for n in real_names if any(allowlist_matches(e, n) for e in allowlist)]
    filtered = [n for n in real_names if n not in set(advertised)]
    missing = [
        MissingEntry(entry, suggest_tool_names(entry, real_names))
        for entry in allowlist
        if not any(allowlist_matches(entry, n) for n in real_names)
    ]
    return advertised, filtered, missing


@dataclass(slots=True)
class _Slot:
    record: DataSource
    source: ToolSource | None = None
    specs: list[ToolSpec] | None = None
    skip: SourceSkipped | None = None
    duration_ms: float = 0.0
    cold_start_ms: float | None = None
    ready: anyio.Event = field(default_factory=anyio.Event)


@asynccontextmanager
async def resolve_tools(
    *,
    selection: list[str] | None,
    allowlist: list[str],
    available: list[DataSource],
    context: ToolContext,
    pool: SessionPool | None = None,
) -> AsyncIterator[ResolvedTools]:
    """Build the agent's tools and keep them open for the ``async with`` body.

    Never raises for a source's sake: every failure becomes a ``sources_skipped`` entry.
    Sources that connect to something are held in tasks of their own, concurrently; inline
    sources (``inline = True`` on their class, e.g. builtin) are built right here; with a
    ``pool``, the kinds it keeps warm are leased from it."""
    started = time.perf_counter()
    chosen, skipped = select_sources(selection, available)
    slots = [_Slot(record) for record in chosen]
    inline = [slot for slot in slots if _is_inline(slot.record)]
    held = [slot for slot in slots if not _is_inline(slot.record)]
    leased: list[PooledSource] = []
    try:
        for slot in inline:
            await _open(slot, context)
        if pool is not None:
            held = await _lease_warm(pool, held, leased)
        if not held:
            yield _assemble(slots, skipped, allowlist, started)
            return
        close = anyio.Event()
        body_error: Exception | None = None
        async with anyio.create_task_group() as group:
            for slot in held:
                if pool is not None and pool.accepts(slot.record):
                    group.start_soon(_lease_source, slot, pool, context, close, leased)
                    continue
                group.start_soon(_hold_source, slot, context, close)
            try:
                for slot in held:
                    await slot.ready.wait()
                try:
                    yield _assemble(slots, skipped, allowlist, started)
                except Exception as exc:
                    # Re-raised below, after the sources closed, so callers get the run's
                    # own error rather than an ExceptionGroup made by this task group.
                    body_error = exc
            finally:
                close.set()
        if body_error is not None:
            raise body_error
    finally:
        for lease in leased:
            lease.release()
        for slot in inline:
            if slot.source is not None:
                await close_quietly(slot.source, CLOSE_S)


async def _lease_warm(
    pool: SessionPool, held: list[_Slot], leased: list[PooledSource]
) -> list[_Slot]:
    """Fill the slots whose sessions are warm right now, with no task and no I/O; return the
    slots left to build (or to lease with a wait)."""
    rest: list[_Slot] = []
    for slot in held:
        if pool.accepts(slot.record) and pool.is_warm(slot.record):
            await _lease(slot, pool, leased)
        else:
            rest.append(slot)
    return rest


async def _lease(
    slot: _Slot, pool: SessionPool, leased: list[PooledSource], timeout_s: float = math.inf
) -> None:
    """Lease the slot's session, waiting at most ``timeout_s`` for it to start; a start that
    outlives it goes on in the pool for the next run."""
    record = slot.record
    started = time.perf_counter()
    try:
        with anyio.move_on_after(timeout_s) as scope:
            try:
                lease = await pool.lease(record)
            except SourceUnavailable as exc:
                slot.skip = _skip(record, exc.reason, exc.message)
            else:
                leased.append(lease)
                source = wrap_for_config(lease, record.config)
                slot.specs = await source.list_tools()
                slot.source = source
                slot.cold_start_ms = lease.cold_start_ms
        if scope.cancelled_caught and slot.source is None:
            slot.skip = _too_slow(record, timeout_s)
    finally:
        slot.duration_ms = (time.perf_counter() - started) * 1000
        slot.ready.set()


async def _lease_source(
    slot: _Slot,
    pool: SessionPool,
    context: ToolContext,
    close: anyio.Event,
    leased: list[PooledSource],
) -> None:
    """Lease a session that is starting (or must start) under the resolution timeout, then
    keep the slot until ``close``."""
    await _lease(slot, pool, leased, context.resolve_timeout_s)
    await close.wait()


def _is_inline(record: DataSource) -> bool:
    try:
        return bool(getattr(source_kinds.get(record.kind), "inline", False))
    except Exception:  # an unknown kind is reported by _hold_source as a skip
        return False


def _build(record: DataSource, context: ToolContext) -> ToolSource:
    from cairn.tools.guard import GuardedSource

    factory = source_kinds.get(record.kind)
    return GuardedSource(
        wrap_for_config(factory(record, context), record.config), record.secret.values()
    )


async def _open(slot: _Slot, context: ToolContext) -> None:
    """Build one source, enter it and list its tools into ``slot`` (``slot.skip`` says why
    not); a source that fails (or is cancelled) once entered is closed again. A source
    that does no I/O is opened so in the caller's task, with no timeout needed."""
    record = slot.record
    started = time.perf_counter()
    entered: ToolSource | None = None
    try:
        source = _build(record, context)
        await source.__aenter__()
        entered = source
        slot.specs = await source.list_tools()
        slot.source = source
    except SourceUnavailable as exc:
        slot.skip = _skip(record, exc.reason, exc.message)
    except Exception as exc:  # a source bug must cost only that source
        slot.skip = _skip(record, "error", f"{record.label}: {type(exc).__name__}: {exc}")
    finally:
        slot.duration_ms = (time.perf_counter() - started) * 1000
        if slot.source is None and entered is not None:
            await close_quietly(entered, CLOSE_S)


async def _hold_source(slot: _Slot, context: ToolContext, close: anyio.Event) -> None:
    """Build one source under the resolution timeout, then hold it open until ``close``.

    One cancel scope spans the source's whole life (its deadline lifted once the tools are
    listed), so scopes the source opens inside are closed in the order anyio requires."""
    record = slot.record
    try:
        with anyio.CancelScope(deadline=anyio.current_time() + context.resolve_timeout_s) as scope:
            await _open(slot, context)
            if slot.source is not None:
                scope.deadline = math.inf
                slot.cold_start_ms = slot.duration_ms
                slot.ready.set()
                try:
                    await close.wait()
                finally:
                    await close_quietly(slot.source, CLOSE_S)
        if scope.cancelled_caught and slot.source is None:
            slot.skip = _too_slow(record, context.resolve_timeout_s)
    finally:
        slot.ready.set()


def _assemble(
    slots: list[_Slot], skipped: list[SourceSkipped], allowlist: list[str], started: float
) -> ResolvedTools:
    trace = ToolResolutionTrace(sources_skipped=list(skipped))
    routes: dict[str, ToolSource] = {}
    specs_by_name: dict[str, ToolSpec] = {}
    for slot in slots:
        if slot.skip is not None:
            trace.sources_skipped.append(slot.skip)
            continue
        assert slot.source is not None and slot.specs is not None
        record = slot.record
        trace.sources_resolved.append(
            SourceResolved(
                record.source_id,
                record.kind,
                record.label,
                len(slot.specs),
                slot.duration_ms,
                hidden_by_source(slot.source),
                slot.cold_start_ms,
            )
        )
        for spec in slot.specs:
            if spec.name in routes:
                trace.name_conflicts.append(f"{spec.name} ({record.label})")
                continue
            routes[spec.name] = slot.source
            specs_by_name[spec.name] = spec
    advertised, filtered, missing = apply_allowlist(allowlist, list(routes))
    missing = [_note_skipped_namespace(entry, slots) for entry in missing]
    trace.tool_names_advertised = advertised
    trace.allowlist_filtered_out = filtered
    trace.allowlist_missing_entries = missing
    trace.duration_ms = (time.perf_counter() - started) * 1000
    return ResolvedTools(
        trace=trace,
        specs=[specs_by_name[name] for name in advertised],
        _routes={name: routes[name] for name in advertised},
    )


def _note_skipped_namespace(entry: MissingEntry, slots: list[_Slot]) -> MissingEntry:
    for slot in slots:
        namespace = slot.record.config.get("namespace")
        if slot.skip is not None and namespace and entry.entry.startswith(f"{namespace}_"):
            return MissingEntry(entry.entry, entry.suggestions, slot.record.label)
    return entry


__all__ = [
    "BUILTIN_SOURCE_ID",
    "ResolvedTools",
    "allowlist_matches",
    "apply_allowlist",
    "resolve_tools",
    "select_sources",
    "suggest_tool_names",
]
