"""Warm MCP sessions: one live connection per (sandbox, source), reused by that sandbox's runs.

Spawning a stdio server and completing the MCP handshake costs hundreds of milliseconds;
a run that finds its server already connected pays only a dictionary lookup. The pool
keeps, for each ``user_mcp`` source a run has used:

* a connected ``McpSource`` (a stdio server stays running, an HTTP session is reused),
  keyed by ``(sandbox_id, source_id)`` and fingerprinted by the source's config *and*
  secret: a source whose config or secret changed gets a new session, so nothing is ever
  called with an old secret; sessions are never shared across sandboxes;
* its ``tools/list`` answer, refreshed when the server sends
  ``notifications/tools/list_changed`` and when it is older than ``tools_ttl_s``;
* a limit of ``max_concurrent_calls`` calls in flight (the source's
  ``config["max_concurrent_calls"]`` or the pool's default); more calls wait their turn.

Failures keep the trace's vocabulary. A server that dies while warm (its stream ends, e.g.
killed from outside) is detected at once; the next run that wants it skips it with the
reason (``unreachable``) and a restart begins, eagerly after ``restart_delay_s`` if no run
asks first. A server that does not answer a refresh within the resolution timeout is
``timeout`` and restarted the same way. A server that cannot start is skipped with its
reason and tried again by the first run after ``retry_after_s`` (so a dead server does not
cost every run the connect timeout). Sessions unused for ``idle_close_s`` are closed.

The pool lives in one event loop (the server's): ``async with SessionPool(...)`` runs its
maintenance task and closes every session on exit. Without a pool (the CLI in-process),
resolution connects and closes per run, as it always did.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.abc

from cairn.domain.sources import DataSource
from cairn.domain.tools import ToolSpec
from cairn.tools.base import SourceUnavailable, ToolContext, ToolOutput, close_quietly
from cairn.tools.mcp import McpSource, open_listed

SessionState = Literal["starting", "ready", "dead", "failed"]
POOLED_KINDS = frozenset({"user_mcp"})
"""Integration sources are not pooled: their OAuth token is checked on every connect."""
CLOSE_S = 10.0  # to close a session the pool lets go


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """How long sessions live and how they are refreshed (``cairn.config`` sets them)."""

    idle_close_s: float = 300.0
    tools_ttl_s: float = 60.0
    max_concurrent_calls: int = 8
    restart_delay_s: float = 1.0
    retry_after_s: float = 5.0


@dataclass(slots=True)
class _Session:
    key: tuple[str, str]
    fingerprint: str
    record: DataSource
    limiter: anyio.CapacityLimiter
    source: McpSource | None = None
    state: SessionState = "starting"
    failure: SourceUnavailable | None = None
    specs: list[ToolSpec] = field(default_factory=list)
    listed_at: float = 0.0
    stale: bool = False
    cold_start_ms: float = 0.0
    leases: int = 0
    last_used: float = 0.0
    changed_at: float = 0.0  # when it died or failed
    starts: int = 1  # sessions started for this key so far (restarts included)
    retired: bool = False
    started: anyio.Event = field(default_factory=anyio.Event)
    refreshed: anyio.Event | None = None  # set when the refresh in flight ends


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What ``SessionPool.sessions`` reports about one session (for tests and diagnosis)."""

    sandbox_id: str
    source_id: str
    state: SessionState
    leases: int
    idle_s: float
    reason: str | None
    starts: int


class PooledSource:
    """A run's view of a warm session: a ``ToolSource`` whose listing is the cached one.

    Entering and leaving do nothing (the session outlives the run); ``release`` gives the
    lease back. Calls go through the session's concurrency limit."""

    kind = "user_mcp"

    def __init__(self, pool: SessionPool, session: _Session, cold_start_ms: float | None) -> None:
        self.source_id = session.record.source_id
        self.label = session.record.label
        self.cold_start_ms = cold_start_ms
        self._pool = pool
        self._session = session
        self._released = False

    async def __aenter__(self) -> PooledSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def release(self) -> None:
        """Give the session back to the pool (idempotent)."""
        if not self._released:
            self._released = True
            self._pool._release(self._session)

    async def list_tools(self) -> list[ToolSpec]:
        return list(self._session.specs)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        source = self._session.source
        if source is None:
            return ToolOutput(error=f"MCP source {self.label!r} is not connected")
        async with self._session.limiter:
            return await source.call_tool(name, arguments)


def fingerprint(record: DataSource) -> str:
    """A digest of what a session was built from: config and secret (never kept in clear)."""
    material = json.dumps([record.kind, record.config, record.secret], sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()


class SessionPool:
    """Warm sessions for one event loop; see the module docstring."""

    def __init__(
        self,
        context: ToolContext,
        settings: PoolSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.context = context
        self.settings = settings or PoolSettings()
        self._clock = clock
        self._sessions: dict[tuple[str, str], _Session] = {}
        self._retired: list[_Session] = []
        self._group: anyio.abc.TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    def _background(self, func: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> bool:
        """Run ``func(*args)`` in the pool's task group; ``False`` once the pool is closing."""
        if self._group is None or self._closing:
            return False
        self._group.start_soon(func, *args)
        return True

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> SessionPool:
        stack = AsyncExitStack()
        self._loop = asyncio.get_running_loop()
        self._group = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        self._group.start_soon(self._maintain)
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self._group is not None and self._stack is not None
        self._closing = True  # no new background tasks: they would be cancelled unstarted
        self._group.cancel_scope.cancel()
        sessions = [*self._sessions.values(), *self._retired]
        self._sessions.clear()
        self._retired.clear()
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as closing:
                for session in sessions:
                    closing.start_soon(self._close, session)
        stack, self._stack, self._group, self._loop = self._stack, None, None, None
        await stack.__aexit__(*exc_info)

    @staticmethod
    def accepts(record: DataSource) -> bool:
        """Whether sources of this record's kind are kept warm."""
        return record.kind in POOLED_KINDS

    def sessions(self) -> list[SessionInfo]:
        """Every live session, for tests and diagnosis."""
        now = self._clock()
        return [
            SessionInfo(
                s.key[0],
                s.key[1],
                s.state,
                s.leases,
                now - s.last_used,
                s.failure.message if s.failure else None,
                s.starts,
            )
            for s in self._sessions.values()
        ]

    def is_warm(self, record: DataSource) -> bool:
        """Whether ``lease(record)`` would answer at once: connected, same fingerprint,
        listing fresh."""
        session = self._sessions.get((record.sandbox_id, record.source_id))
        return (
            session is not None
            and session.state == "ready"
            and not session.stale
            and self._clock() - session.listed_at < self.settings.tools_ttl_s
            and session.fingerprint == fingerprint(record)
        )

    def discard(self, source_id: str) -> None:
        """Close the sessions of a source that was updated or revoked (once unused). Safe to
        call from a worker thread (a sync API route): it is handed to the pool's loop."""
        loop = self._loop
        if loop is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            loop.call_soon_threadsafe(self._discard, source_id)
            return
        self._discard(source_id)

    def _discard(self, source_id: str) -> None:
        # Data only (this may run as a plain loop callback, outside any task): the
        # maintenance task closes retired sessions on its next tick.
        for key in [k for k in self._sessions if k[1] == source_id]:
            session = self._sessions.pop(key)
            session.retired = True
            self._retired.append(session)

    # -- leasing --------------------------------------------------------------------------

    async def lease(self, record: DataSource) -> PooledSource:
        """A warm view of ``record``'s session, started (and waited for) if need be.

        Raises ``SourceUnavailable`` with the trace reason when the source cannot be used
        now. The caller's deadline bounds the wait; a start it gave up on goes on in the
        background for the next run. ``release()`` the result when the run is done."""
        if self._group is None:
            raise RuntimeError("the session pool is not running (use 'async with')")
        key = (record.sandbox_id, record.source_id)
        digest = fingerprint(record)
        session = self._sessions.get(key)
        if session is not None and session.fingerprint != digest:
            self._retire(self._sessions.pop(key))  # updated: never use the old config/secret
            session = None
        now = self._clock()
        if session is None:
            session = self._spawn(key, record, digest)
        elif session.state == "dead":
            assert session.failure is not None
            self._respawn(session)
            raise session.failure
        elif session.state == "failed" and now - session.changed_at >= self.settings.retry_after_s:
            session = self._respawn(session)
        cold = session.state == "starting"
        if cold:
            await session.started.wait()
        if session.state != "ready":
            assert session.failure is not None
            raise session.failure
        if session.stale or now - session.listed_at >= self.settings.tools_ttl_s:
            await self._begin_refresh(session).wait()
            if session.state != "ready":
                assert session.failure is not None
                raise session.failure
        session.leases += 1
        session.last_used = self._clock()
        return PooledSource(self, session, session.cold_start_ms if cold else None)

    def _release(self, session: _Session) -> None:
        session.leases -= 1
        session.last_used = self._clock()
        if session.retired and session.leases == 0:
            self._background(self._close, session)

    def _spawn(self, key: tuple[str, str], record: DataSource, digest: str) -> _Session:
        limit = record.config.get("max_concurrent_calls") or self.settings.max_concurrent_calls
        session = _Session(key, digest, record, anyio.CapacityLimiter(max(1, int(limit))))
        session.last_used = self._clock()
        self._sessions[key] = session
        if not self._background(self._start, session):
            session.failure = SourceUnavailable("error", f"{record.label}: the server is stopping")
            session.state = "failed"
            session.started.set()
        return session

    def _respawn(self, session: _Session) -> _Session:
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]
        self._retire(session)
        fresh = self._spawn(session.key, session.record, session.fingerprint)
        fresh.starts = session.starts + 1
        return fresh

    def _retire(self, session: _Session) -> None:
        session.retired = True
        if session.leases > 0 or not self._background(self._close, session):
            self._retired.append(session)

    # -- the sessions' own tasks ----------------------------------------------------------

    async def _start(self, session: _Session) -> None:
        """Connect and list tools within the resolution timeout; record how it went."""
        started = time.perf_counter()
        source = McpSource(session.record, self.context)
        source.on_lost = lambda why: self._lost(session, "unreachable", why)
        source.on_tools_changed = lambda: self._changed(session)
        try:
            specs = await open_listed(source, self.context.resolve_timeout_s)
        except SourceUnavailable as exc:
            await close_quietly(source, CLOSE_S)
            session.failure = exc
            session.state = "failed"
            session.changed_at = self._clock()
            session.started.set()
            return
        session.source = source
        session.specs = specs
        session.listed_at = self._clock()
        session.cold_start_ms = (time.perf_counter() - started) * 1000
        session.state = "ready"
        session.started.set()
        if session.retired or self._closing:  # discarded while it was starting
            session.source = None
            await close_quietly(source, CLOSE_S)

    def _lost(self, session: _Session, reason: Any, why: str) -> None:
        """The server went away: skip it (with why) until it is restarted."""
        if session.state != "ready":
            return
        session.state = "dead"
        session.changed_at = self._clock()
        session.failure = SourceUnavailable(reason, f"{why}; restarting it")

    def _changed(self, session: _Session) -> None:
        session.stale = True
        if session.state == "ready":
            self._begin_refresh(session)

    def _begin_refresh(self, session: _Session) -> anyio.Event:
        """Start listing the tools again (one refresh at a time), in the pool's task group so
        that a caller giving up does not stop it: a server that does not answer in time is
        found hung whoever waits."""
        if session.refreshed is None:
            done = session.refreshed = anyio.Event()
            if not self._background(self._refresh, session, done):
                done.set()
                return done
        return session.refreshed

    async def _refresh(self, session: _Session, done: anyio.Event) -> None:
        timeout = self.context.resolve_timeout_s
        session.stale = False
        try:
            assert session.source is not None
            with anyio.fail_after(timeout):
                specs = await session.source.list_tools()
        except TimeoutError:
            label = session.record.label
            self._lost(
                session, "timeout", f"{label}: did not answer tools/list within {timeout:g} s"
            )
        except SourceUnavailable as exc:
            self._lost(session, exc.reason, exc.message)
        else:
            session.specs = specs
            session.listed_at = self._clock()
        finally:
            session.refreshed = None
            done.set()

    async def _close(self, session: _Session) -> None:
        source, session.source = session.source, None
        if source is not None:
            await close_quietly(source, CLOSE_S)

    async def _maintain(self) -> None:
        """Close idle sessions, restart dead ones after ``restart_delay_s``, free retirees."""
        settings = self.settings
        tick = max(0.05, min(settings.idle_close_s, settings.restart_delay_s, 1.0) / 2)
        while True:
            await anyio.sleep(tick)
            now = self._clock()
            for session in list(self._sessions.values()):
                idle = session.leases == 0 and now - session.last_used >= settings.idle_close_s
                if session.state in ("ready", "failed") and idle:
                    del self._sessions[session.key]
                    self._retire(session)
                elif session.state == "dead" and now - session.changed_at >= (
                    settings.restart_delay_s
                ):
                    self._respawn(session)
            for session in [s for s in self._retired if s.leases == 0]:
                self._retired.remove(session)
                self._retire(session)


__all__ = ["POOLED_KINDS", "PoolSettings", "PooledSource", "SessionInfo", "SessionPool"]
