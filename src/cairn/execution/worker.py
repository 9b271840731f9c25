"""The ledger worker: claims queued runs from the ledger and executes them.

Liveness is a lease (``lease_s``, renewed by each run's heartbeat and by housekeeping);
an expired one is ended ``failed``/``worker_lost`` by any worker's housekeeping, never a
queued run (docs/ledger.md). Claims are one conditional ``UPDATE`` per batch
(``cairn.store.runs.claim_runs``), so no run executes on two workers at once. Fairness
(``sandbox_share``, ``agent_concurrency``) is described in docs/scale-out.md.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup, TaskStatus

from cairn.domain.runs import Run
from cairn.services.app import App
from cairn.store.notify import listens

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger("cairn.worker")

IDLE_POLL_S = 0.05
"""How often an idle worker looks at the ledger for runs accepted by another process (a
fire in this process wakes it at once)."""


def new_worker_id() -> str:
    """``host:pid:random``: says where a lost run was executing."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LedgerWorker:
    """Executes up to ``concurrency`` runs at once, claimed from the ledger."""

    def __init__(
        self,
        app: App,
        *,
        concurrency: int = 8,
        executor: str = "embedded",
        idle_poll_s: float = IDLE_POLL_S,
        listen: bool = False,
    ) -> None:
        self.app = app
        self.listen = listen
        self.runner = app.runner
        self.concurrency = max(1, concurrency)
        self.executor = executor
        self.idle_poll_s = idle_poll_s
        self.worker_id = new_worker_id()
        self.lease_s = app.settings.lease_s
        self._active: dict[str, Run] = {}
        self._signal = anyio.Event()
        self._stopping = False
        self._idle = anyio.Event()
        self._alone: frozenset[str] = frozenset()  # the only sandboxes with runs waiting
        self._alone_until = 0.0  # ... as last seen, trusted until then (monotonic)

    @property
    def listener_name(self) -> str:
        """The ``application_name`` of this worker's LISTEN connection (PostgreSQL keeps
        63 bytes of it)."""
        return f"cairn worker {self.worker_id}"[:63]

    def wake(self, sandboxes: Iterable[str] = ()) -> None:
        """Runs (of ``sandboxes``) were accepted in this process: look for them now."""
        if not self._alone.issuperset(sandboxes):
            self._alone_until = 0.0  # someone new waits: ask the ledger again
        self._signal.set()

    @property
    def active(self) -> int:
        """Runs executing here now."""
        return len(self._active)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Register, reap expired leases, then claim and execute until ``stop``."""
        self._register()
        self.housekeep()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._housekeeping)
                if self.listen and listens(self.app.store.url):
                    group.start_soon(self._listen)
                task_status.started()
                await self._dispatch(group)
                if self._active:
                    await self._idle.wait()
                group.cancel_scope.cancel()
        finally:
            self._mark_stopped()

    async def stop(self, grace_s: float) -> None:
        """Stop claiming; running runs get ``grace_s`` to finish, then are cancelled with
        the reason. Queued runs are left queued for the next start."""
        self._stopping = True
        self._signal.set()
        if not self._active:
            self._idle.set()
            return
        with anyio.move_on_after(grace_s):
            await self._idle.wait()
        for run_id in list(self._active):
            self.runner.cancel(
                run_id,
                reason=f"the worker stopped (shutdown) and the run did not finish within "
                f"the {grace_s:g} s grace period",
            )
        with anyio.move_on_after(10):
            await self._idle.wait()

    async def _dispatch(self, group: TaskGroup) -> None:
        while not self._stopping:
            free = self.concurrency - len(self._active)
            claimed: list[Run] = []
            if free > 0:
                try:
                    claimed = self._claim(free)
                except Exception:  # the database is away: try again shortly
                    log.exception("claiming runs failed")
            for run in claimed:
                self._active[run.run_id] = run
                group.start_soon(self._execute, run)
            if claimed and len(claimed) < free:
                continue  # maybe more waiting
            if self._stopping:
                break
            with anyio.move_on_after(self.idle_poll_s):
                await self._signal.wait()
            self._signal = anyio.Event()

    def _claim(self, free: int) -> list[Run]:
        """Claim up to ``free`` runs, fairly: while other sandboxes have runs waiting, in
        steps no bigger than what the busiest sandbox may still take, skipping sandboxes at
        their share; when only they have runs waiting, they get the rest (no slot idles
        while work waits)."""
        from cairn.store import runs as run_store

        settings = self.app.settings
        share = max(1, math.ceil(self.concurrency * settings.sandbox_share))
        held = Counter(run.sandbox_id for run in self._active.values())
        now = datetime.now(UTC)
        claimed: list[Run] = []
        while free > len(claimed):
            full = [sandbox for sandbox, count in held.items() if count >= share]
            with self.app.store.begin() as conn:
                if full and self._only_they_wait(conn, full):
                    full, want = [], free - len(claimed)  # nobody else waits: the rest
                else:
                    step = max(1, share - max(held.values(), default=0))
                    want = min(free - len(claimed), step)
                batch = run_store.claim_runs(
                    conn,
                    self.worker_id,
                    now,
                    want,
                    exclude_sandboxes=full,
                    agent_limit=settings.agent_concurrency,
                )
            claimed += batch
            held.update(run.sandbox_id for run in batch)
            if len(batch) < want:
                break
        return claimed

    def _only_they_wait(self, conn: Connection, full: list[str]) -> bool:
        """Whether only ``full`` sandboxes have runs waiting. Asked of the ledger at most
        every ``idle_poll_s`` (at once again when this process accepts a run of another
        sandbox), so a flood of one sandbox does not pay a look per claim; a run of another
        sandbox queued by another process waits at most that long for its share."""
        from cairn.store import runs as run_store

        if self._alone.issubset(full) and time.monotonic() < self._alone_until:
            return True
        if run_store.queued_elsewhere(conn, full):
            return False
        self._alone, self._alone_until = frozenset(full), time.monotonic() + self.idle_poll_s
        return True

    async def _execute(self, run: Run) -> None:
        from cairn.services.sources import available_sources

        try:
            with self.app.store.connect() as conn:
                agent = self.app.caches.agent(conn, run.sandbox_id, run.agent_id)
                available = available_sources(self.app, run.sandbox_id, conn)
            await self.runner.execute(run, agent, available)
        except Exception as exc:  # one run's failure must not stop the worker
            log.exception("run %s could not be completed", run.run_id)
            self._end_failed(run, exc)
        finally:
            del self._active[run.run_id]
            self.app.completions.finished(run.run_id)
            self._signal.set()
            if self._stopping and not self._active:
                self._idle.set()

    def _end_failed(self, run: Run, exc: Exception) -> None:
        """A run whose execution raised (agent gone, final write refused): a final row if
        it can still be written; else its lease expires and the reaper ends it."""
        from cairn.store import runs as run_store

        reason = f"internal error: the run could not be completed: {type(exc).__name__}: {exc}"
        run.status, run.error_type, run.error_message = "failed", "internal_error", reason
        try:
            with self.app.store.begin() as conn:
                run_store.fail_live_run(conn, run.run_id, datetime.now(UTC), reason)
        except Exception:
            log.exception("run %s could not be marked failed", run.run_id)
        if self.runner.bus is not None:
            self.runner.bus.run_finished(run)

    async def _listen(self) -> None:
        """Wake at each announcement of queued runs (PostgreSQL's NOTIFY from another
        process's fire); the idle poll still finds them should this connection be down."""
        from cairn.store.notify import run_announcements

        while True:
            try:
                async for _ in run_announcements(self.app.store.url, self.listener_name):
                    self.wake()
            except Exception:  # the database is away: listen again shortly
                log.warning("listening for queued runs failed; retrying", exc_info=True)
            await anyio.sleep(1.0)

    async def _housekeeping(self) -> None:
        interval = max(0.2, min(self.lease_s / 3, 5.0))
        while True:
            await anyio.sleep(interval)
            try:
                self.housekeep()
            except Exception:  # the database may be away for a while
                log.exception("worker housekeeping failed")

    def housekeep(self) -> int:
        """Renew this worker's row and its runs' leases, and end other workers' runs whose
        lease expired; returns how many were ended. (After a long stall of this process,
        its own runs are renewed first: they are alive, whatever their heartbeat says.)"""
        from cairn.store import runs as run_store
        from cairn.store import workers as worker_store

        now = datetime.now(UTC)
        with self.app.store.begin() as conn:
            worker_store.beat_worker(conn, self.worker_id, now)
            run_store.renew_leases(conn, self.worker_id, now)
        with self.app.store.begin() as conn:
            reaped = run_store.reap_stale_runs(
                conn, stale_after_s=self.lease_s, sparing=self.worker_id
            )
            worker_store.forget_workers(conn, heard_before=now - timedelta(days=1))
        if reaped:
            log.warning("ended %d run(s) whose worker lost its lease", reaped)
        return reaped

    def _register(self) -> None:
        from cairn.store import workers as worker_store

        now = datetime.now(UTC)
        with self.app.store.begin() as conn:
            worker_store.register_worker(
                conn,
                worker_store.WorkerRow(
                    self.worker_id,
                    socket.gethostname(),
                    os.getpid(),
                    self.concurrency,
                    self.executor,
                    now,
                    now,
                    None,
                ),
            )

    def _mark_stopped(self) -> None:
        from cairn.store import workers as worker_store

        try:
            with self.app.store.begin() as conn:
                worker_store.stop_worker(conn, self.worker_id, datetime.now(UTC))
        except Exception:
            log.exception("could not record that worker %s stopped", self.worker_id)
