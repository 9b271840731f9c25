"""Run rows and run events: the ledger's write path and its listings.

The write path is three short transactions per run (insert ``queued`` when accepted, in
the fire's own transaction; the claim; one final update with the remaining events), plus
heartbeats with any new events while it runs — the heartbeat is the worker's lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from operator import eq, ge, lt
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    bindparam,
    delete,
    false,
    func,
    insert,
    select,
    text,
    true,
    update,
)

from cairn.domain.runs import (
    FINAL_STATUSES,
    LIVE_STATUSES,
    Run,
    RunEvent,
    RunFilter,
)
from cairn.errors import Conflict, NotFound
from cairn.ids import id_floor
from cairn.store.rows import run_from_row
from cairn.store.schema import run_events, runs, workers
from cairn.store.usage import roll_up_finished, roll_up_runs, unroll_runs

_ROW_COLUMNS = [c for c in runs.c]

_PROGRESS_COLUMNS = (
    "status",
    "outcome",
    "output_text",
    "tool_calls",
    "tokens_in",
    "tokens_out",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_micros",
    "duration_ms",
    "error_message",
    "error_type",
    "tool_resolution_trace",
    "started_at",
    "finished_at",
    "heartbeat_at",
)


def _final_values(run: Run) -> dict[str, Any]:
    """The columns a run changes after it is accepted (``_PROGRESS_COLUMNS``)."""
    return {
        "status": run.status,
        "outcome": run.outcome,
        "output_text": run.output_text,
        "tool_calls": [call.to_dict() for call in run.tool_calls],
        "tokens_in": run.usage.tokens_in,
        "tokens_out": run.usage.tokens_out,
        "cache_read_tokens": run.usage.cache_read_tokens,
        "cache_write_tokens": run.usage.cache_write_tokens,
        "cost_micros": run.cost_micros,
        "duration_ms": run.duration_ms,
        "error_message": run.error_message,
        "error_type": run.error_type,
        "tool_resolution_trace": (
            run.tool_resolution_trace.to_dict() if run.tool_resolution_trace else None
        ),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "heartbeat_at": run.heartbeat_at,
    }


_TEXT_COLUMNS = ("output_text", "error_message", "model")


def _storable(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL text cannot hold a NUL character, and a run's text may have one (a model
    or a tool can return anything): there it is kept as U+FFFD rather than failing the
    write, which would leave the run without its final state."""
    if conn.dialect.name == "postgresql":
        for name in _TEXT_COLUMNS:
            value = values.get(name)
            if isinstance(value, str) and "\x00" in value:
                values[name] = value.replace("\x00", "\ufffd")
    return values


_INSERT_RUN = insert(runs)


def create_run(conn: Connection, run: Run) -> None:
    """Insert a run as accepted (``queued``, or ``running`` when it starts at once)."""
    conn.execute(_INSERT_RUN, _new_run_values(conn, run))


def create_runs(conn: Connection, batch: Sequence[Run]) -> None:
    """Insert several accepted runs with one statement (the webhook group commit's)."""
    if batch:
        conn.execute(_INSERT_RUN, [_new_run_values(conn, run) for run in batch])


def _new_run_values(conn: Connection, run: Run) -> dict[str, Any]:
    values = _final_values(run)
    values.update(
        run_id=run.run_id,
        sandbox_id=run.sandbox_id,
        agent_id=run.agent_id,
        agent_slug=run.agent_slug,
        agent_version=run.agent_version,
        trigger_id=run.trigger_id,
        kind=run.kind,
        model=run.model,
        event_payload=run.event_payload,
        created_at=run.created_at,
        replay_of=run.replay_of,
        traceparent=run.traceparent,
    )
    return _storable(conn, values)


def append_events(conn: Connection, run_id: str, events: Sequence[RunEvent]) -> None:
    """Persist events of a run (their ``seq`` already assigned by the runner)."""
    _append_events_of(conn, [(run_id, events)])


def _append_events_of(conn: Connection, batch: Sequence[tuple[str, Sequence[RunEvent]]]) -> None:
    """The events of several runs, with one statement."""
    now = datetime.now(UTC)
    rows = [
        {
            "run_id": run_id,
            "seq": e.seq,
            "kind": e.kind,
            "data": e.data,
            "created_at": e.created_at or now,
        }
        for run_id, events in batch
        for e in events
    ]
    if rows:
        conn.execute(insert(run_events), rows)


# One statement object for every progress write: SQLAlchemy caches its compiled form, where
# ``update(...).values(**literals)`` would be rebuilt and re-keyed on each call (hot path).
_SAVE_PROGRESS = (
    update(runs)
    .where(runs.c.run_id == bindparam("target_run_id"))
    .values({name: bindparam(name) for name in _PROGRESS_COLUMNS})
)


_SAVE_LIVE_PROGRESS = _SAVE_PROGRESS.where(runs.c.status.in_(LIVE_STATUSES))

# The final write of a run not in the usage rollup yet, marking it rolled (its sums are
# added in the same transaction by ``roll_up_finished``).
_FINISH_UNROLLED = (
    update(runs)
    .where(runs.c.run_id == bindparam("target_run_id"), runs.c.usage_rolled == false())
    .values({name: bindparam(name) for name in _PROGRESS_COLUMNS} | {"usage_rolled": true()})
)


def save_progress(conn: Connection, run: Run, events: Sequence[RunEvent]) -> None:
    """Heartbeat (the lease of the worker running it): keep the live row current (status,
    calls so far, trace) and add new events. A row already ended (reaped after its lease
    expired) is not brought back to life."""
    values = _storable(conn, _final_values(run))
    values["target_run_id"] = run.run_id
    conn.execute(_SAVE_LIVE_PROGRESS, values)
    append_events(conn, run.run_id, events)


def finish_run(conn: Connection, run: Run, events: Sequence[RunEvent]) -> None:
    """Write the final state of a run and its remaining events, in one transaction, and
    add it to the hourly usage rollup. It wins over a reaper that ended the run meanwhile:
    the row then says what happened (and the rollup forgets what the reaper wrote).

    The usual case is one update that also marks the row rolled, its events, and an upsert
    per rollup table; only a row already rolled up (a reaper ended it) takes the general
    path that takes it back out first."""
    values = _storable(conn, _final_values(run))
    values["target_run_id"] = run.run_id
    if run.status in FINAL_STATUSES and conn.execute(_FINISH_UNROLLED, values).rowcount == 1:
        append_events(conn, run.run_id, events)
        roll_up_finished(conn, [run.run_id])
        return
    unroll_runs(conn, [run.run_id])
    conn.execute(_SAVE_PROGRESS, values)
    append_events(conn, run.run_id, events)
    roll_up_runs(conn, [run.run_id])


def finish_runs(conn: Connection, finishes: Sequence[tuple[Run, Sequence[RunEvent]]]) -> None:
    """``finish_run`` for several runs in one transaction (the runs of a process that end
    in the same turn of the event loop): the final rows with one batched update, their
    events with one insert, the rollup's upserts batched. When a row of the batch was
    ended meanwhile (a reaper rolled it up), ``Conflict`` is raised: the caller rolls back
    and writes each run alone, where ``finish_run`` takes its general path."""
    if len(finishes) == 1 or any(run.status not in FINAL_STATUSES for run, _ in finishes):
        for run, events in finishes:
            finish_run(conn, run, events)
        return
    values = [_storable(conn, _final_values(run)) for run, _events in finishes]
    for row, (run, _events) in zip(values, finishes, strict=True):
        row["target_run_id"] = run.run_id
    if conn.execute(_FINISH_UNROLLED, values).rowcount != len(values):
        raise Conflict("a run of the batch was ended meanwhile; write each run alone")
    _append_events_of(conn, [(run.run_id, events) for run, events in finishes])
    roll_up_finished(conn, [run.run_id for run, _events in finishes])


def request_cancel(conn: Connection, run_id: str) -> None:
    """Ask whichever process runs ``run_id`` to cancel it (seen at its next heartbeat)."""
    conn.execute(
        update(runs)
        .where(runs.c.run_id == run_id, runs.c.cancel_requested_at.is_(None))
        .values(cancel_requested_at=datetime.now(UTC))
    )


def cancel_requested(conn: Connection, run_id: str) -> bool:
    """Whether a cancel was asked for ``run_id``."""
    return (
        conn.execute(
            select(runs.c.cancel_requested_at).where(runs.c.run_id == run_id)
        ).scalar_one_or_none()
        is not None
    )


def claim_runs(
    conn: Connection,
    worker_id: str,
    now: datetime,
    limit: int,
    *,
    exclude_sandboxes: Sequence[str] = (),
    agent_limit: int = 0,
) -> list[Run]:
    """Move up to ``limit`` queued runs, oldest first, to ``running`` for ``worker_id``.

    One ``UPDATE … WHERE status = 'queued' AND run_id IN (oldest queued) RETURNING``: a
    run is claimed by one worker only (on PostgreSQL the subquery takes its rows ``FOR
    UPDATE SKIP LOCKED``, so concurrent workers take different runs instead of waiting;
    SQLite runs one write at a time). ``exclude_sandboxes`` skips sandboxes that hold
    their share of this worker. With ``agent_limit`` (concurrent runs per agent, 0 = none)
    claims are serialised by a lock (advisory on PostgreSQL, the write lock on SQLite) so
    the limit holds exactly across processes."""
    if limit <= 0:
        return []
    if agent_limit > 0:
        return _claim_within_agent_limit(
            conn, worker_id, now, limit, exclude_sandboxes, agent_limit
        )
    if not exclude_sandboxes and conn.dialect.name != "postgresql":
        return _claimed(conn, worker_id, now, _CLAIM_OLDEST, limit)
    oldest = select(runs.c.run_id).where(runs.c.status == "queued")
    if exclude_sandboxes:
        oldest = oldest.where(runs.c.sandbox_id.not_in(list(exclude_sandboxes)))
    oldest = oldest.order_by(runs.c.run_id).limit(limit)
    if conn.dialect.name == "postgresql":
        # Picked first, then updated: inside ``UPDATE … IN (subquery)`` PostgreSQL may
        # evaluate a LIMIT … SKIP LOCKED subquery more than once and take more than
        # ``limit`` rows.
        picked = list(conn.execute(oldest.with_for_update(skip_locked=True)).scalars())
        return _claimed(conn, worker_id, now, picked) if picked else []
    return _claimed(conn, worker_id, now, oldest.scalar_subquery())


def queued_elsewhere(conn: Connection, sandboxes: Sequence[str]) -> bool:
    """Whether a sandbox other than ``sandboxes`` has a run waiting. One seek of the index
    on (status, sandbox_id) per gap between them, so the answer costs the same however
    long their own backlog is (a claim that excluded them found nothing only by walking
    all of it)."""
    bounds: list[str | None] = [None, *sorted(set(sandboxes)), None]
    for low, high in pairwise(bounds):
        if low is None and high is None:
            statement, params = _QUEUED_ANY, {}
        elif low is None:
            statement, params = _QUEUED_BELOW, {"high": high}
        elif high is None:
            statement, params = _QUEUED_ABOVE, {"low": low}
        else:
            statement, params = _QUEUED_BETWEEN, {"low": low, "high": high}
        if conn.execute(statement, params).first() is not None:
            return True
    return False


_QUEUED_ANY = select(runs.c.sandbox_id).where(runs.c.status == "queued").limit(1)
_QUEUED_BELOW = _QUEUED_ANY.where(runs.c.sandbox_id < bindparam("high"))
_QUEUED_ABOVE = _QUEUED_ANY.where(runs.c.sandbox_id > bindparam("low"))
_QUEUED_BETWEEN = _QUEUED_ABOVE.where(runs.c.sandbox_id < bindparam("high"))


def claim_run(
    conn: Connection, run_id: str, worker_id: str, now: datetime, *, agent_limit: int = 0
) -> Run | bool:
    """Move one run, named by its id, from ``queued`` to ``running`` for ``worker_id``: the
    same conditional ``UPDATE`` as ``claim_runs``, for a backend whose queue hands out run
    ids (procrastinate). ``False`` when the run is not queued (cancelled, already taken,
    final); ``True`` when it is but its agent already runs ``agent_limit`` runs (checked
    under the same lock as ``claim_runs``, so the limit holds across both)."""
    if agent_limit > 0:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
        agent_id = conn.execute(
            select(runs.c.agent_id).where(runs.c.run_id == run_id, runs.c.status == "queued")
        ).scalar_one_or_none()
        if agent_id is None:
            return False
        running = conn.execute(
            select(func.count())
            .select_from(runs)
            .where(runs.c.agent_id == agent_id, runs.c.status == "running")
        ).scalar_one()
        if running >= agent_limit:
            return True
    claimed = _claimed(conn, worker_id, now, [run_id])
    return claimed[0] if claimed else False


def _claim_statement(which: Any) -> Any:
    return (
        update(runs)
        .where(runs.c.run_id.in_(which), runs.c.status == "queued")
        .values(
            status="running",
            started_at=bindparam("claim_now"),
            heartbeat_at=bindparam("claim_now"),
            worker_id=bindparam("claim_worker"),
        )
        .returning(*_ROW_COLUMNS)
    )


# The claims of the hot path as single statement objects, compiled once (SQLAlchemy caches
# a statement's compiled form by its structure; building the same UPDATE anew for every
# claim spent most of a claim's CPU on building and keying it).
_CLAIM_IDS = _claim_statement(bindparam("claim_ids", expanding=True))
_CLAIM_OLDEST = _claim_statement(
    select(runs.c.run_id)
    .where(runs.c.status == "queued")
    .order_by(runs.c.run_id)
    .limit(bindparam("claim_limit"))
    .scalar_subquery()
)


def _claimed(
    conn: Connection, worker_id: str, now: datetime, which: Any, limit: int | None = None
) -> list[Run]:
    """Claim the runs ``which`` names: a list of ids (``_CLAIM_IDS``), ``_CLAIM_OLDEST``
    (the ``limit`` oldest queued), or a subquery of the caller's (built here)."""
    params: dict[str, Any] = {"claim_now": now, "claim_worker": worker_id}
    if which is _CLAIM_OLDEST:
        statement, params["claim_limit"] = _CLAIM_OLDEST, limit
    elif isinstance(which, list):
        statement, params["claim_ids"] = _CLAIM_IDS, which
    else:
        statement = _claim_statement(which)
    rows = conn.execute(statement, params)
    return sorted((run_from_row(row) for row in rows), key=lambda run: run.run_id)


def _claim_within_agent_limit(
    conn: Connection,
    worker_id: str,
    now: datetime,
    limit: int,
    exclude_sandboxes: Sequence[str],
    agent_limit: int,
) -> list[Run]:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
    else:  # takes SQLite's write lock now, so nothing can claim between the read and the write
        conn.execute(
            update(workers).where(workers.c.worker_id == worker_id).values(heartbeat_at=now)
        )
    busy: dict[str, int] = {
        agent_id: int(count)
        for agent_id, count in conn.execute(
            select(runs.c.agent_id, func.count())
            .where(runs.c.status == "running")
            .group_by(runs.c.agent_id)
        )
    }
    query = select(runs.c.run_id, runs.c.agent_id).where(runs.c.status == "queued")
    if exclude_sandboxes:
        query = query.where(runs.c.sandbox_id.not_in(list(exclude_sandboxes)))
    full = [agent_id for agent_id, count in busy.items() if count >= agent_limit]
    if full:
        query = query.where(runs.c.agent_id.not_in(full))
    picked: list[str] = []
    for row in conn.execute(query.order_by(runs.c.run_id).limit(limit * 4)):
        if busy.get(row.agent_id, 0) >= agent_limit:
            continue
        busy[row.agent_id] = busy.get(row.agent_id, 0) + 1
        picked.append(row.run_id)
        if len(picked) >= limit:
            break
    return _claimed(conn, worker_id, now, picked) if picked else []


_CLAIM_LOCK = 0x6361_6972_6E00  # "cairn": the advisory lock that serialises claims


def count_queued(conn: Connection) -> int:
    """Runs accepted and waiting for a worker (the backlog), on the ``(status, run_id)`` index."""
    return int(
        conn.execute(
            select(func.count()).select_from(runs).where(runs.c.status == "queued")
        ).scalar_one()
    )


def cancel_queued_run(conn: Connection, run_id: str, now: datetime, reason: str) -> bool:
    """End a run that never started as ``cancelled``; ``False`` if it had already started."""
    result = conn.execute(
        update(runs)
        .where(runs.c.run_id == run_id, runs.c.status == "queued")
        .values(
            status="cancelled",
            outcome="interrupted",
            error_type="cancelled",
            error_message=reason,
            finished_at=now,
            heartbeat_at=now,
            duration_ms=0.0,
        )
    )
    return bool(result.rowcount)


def fail_live_run(conn: Connection, run_id: str, now: datetime, reason: str) -> bool:
    """End a live run ``failed`` with ``reason`` when its own final write could not be made;
    ``False`` if the row is already final."""
    result = conn.execute(
        update(runs)
        .where(runs.c.run_id == run_id, runs.c.status.in_(LIVE_STATUSES))
        .values(
            status="failed",
            outcome="interrupted",
            error_type="internal_error",
            error_message=reason,
            finished_at=now,
            heartbeat_at=now,
        )
    )
    return bool(result.rowcount)


def get_run(conn: Connection, sandbox_id: str, run_id: str) -> Run:
    """One run of the sandbox, or ``NotFound``."""
    row = conn.execute(
        select(*_ROW_COLUMNS).where(runs.c.sandbox_id == sandbox_id, runs.c.run_id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"no run {run_id!r} in sandbox {sandbox_id!r}")
    return run_from_row(row)


def listing_query(where: RunFilter) -> Select[Any]:
    """The keyset listing for ``where``: newest first on an index ending in ``run_id``."""
    since = None if where.since is None else id_floor("run", where.since)
    until = None if where.until is None else id_floor("run", where.until)
    query = select(*_ROW_COLUMNS).where(runs.c.sandbox_id == where.sandbox_id)
    for compare, column, value in (
        (eq, runs.c.agent_id, where.agent_id),
        (eq, runs.c.status, where.status),
        (eq, runs.c.trigger_id, where.trigger_id),
        (eq, runs.c.kind, where.kind),
        (lt, runs.c.run_id, where.before),
        (ge, runs.c.run_id, since),
        (lt, runs.c.run_id, until),
    ):
        if value is not None:
            query = query.where(compare(column, value))
    return query.order_by(runs.c.run_id.desc()).limit(where.limit)


def list_runs(conn: Connection, where: RunFilter) -> list[Run]:
    """Runs newest first, by keyset: ``where.before`` is the last run_id of the previous page."""
    return [run_from_row(row) for row in conn.execute(listing_query(where))]


def list_events(conn: Connection, run_id: str, *, after_seq: int = 0) -> list[RunEvent]:
    """A run's events in order, from ``after_seq`` on (for resuming a stream)."""
    rows = conn.execute(
        select(run_events.c.seq, run_events.c.kind, run_events.c.data, run_events.c.created_at)
        .where(run_events.c.run_id == run_id, run_events.c.seq > after_seq)
        .order_by(run_events.c.seq)
    )
    return [RunEvent(row.seq, row.kind, row.data, row.created_at) for row in rows]


def renew_leases(conn: Connection, worker_id: str, now: datetime) -> None:
    """The worker is alive: renew the lease of every run it holds (besides each run's own
    heartbeat), so a run is never reaped while its worker's process answers."""
    conn.execute(
        update(runs)
        .where(runs.c.worker_id == worker_id, runs.c.status == "running")
        .values(heartbeat_at=now)
    )


def reap_stale_runs(conn: Connection, *, stale_after_s: float, sparing: str | None = None) -> int:
    """End ``running`` runs whose lease expired (their worker stopped renewing
    ``heartbeat_at``: killed, crashed, cut off) as ``failed``/``worker_lost``; returns how many.

    Only running rows: a queued run is never reaped, however long it waits, because no
    worker holds it yet. Each message says which worker held the run and when it was last
    heard from. The run is not executed again: its tool calls may have had side effects.
    ``sparing`` is the calling worker's id: its own runs are alive by definition."""
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=stale_after_s)
    query = select(runs.c.run_id, runs.c.worker_id, runs.c.heartbeat_at).where(
        runs.c.status == "running", runs.c.heartbeat_at < cutoff
    )
    if sparing is not None:
        query = query.where((runs.c.worker_id != sparing) | runs.c.worker_id.is_(None))
    expired = conn.execute(query).all()
    ended = 0
    for row in expired:
        last = row.heartbeat_at.isoformat(timespec="seconds") if row.heartbeat_at else "never"
        message = (
            f"worker {row.worker_id or 'unknown'} stopped renewing its lease on this run "
            f"(last heartbeat {last}, lease {stale_after_s:g} s): the process was killed, "
            f"crashed or lost the database; ended at {now.isoformat(timespec='seconds')} "
            "and not re-run, since its tool calls may have had side effects"
        )
        result = conn.execute(
            update(runs)
            .where(
                runs.c.run_id == row.run_id,
                runs.c.status == "running",
                runs.c.heartbeat_at < cutoff,
            )
            .values(
                status="failed",
                outcome="interrupted",
                error_type="worker_lost",
                error_message=message,
                finished_at=now,
            )
        )
        ended += int(result.rowcount or 0)
    return ended


def prune_runs(
    conn: Connection,
    *,
    older_than: datetime,
    sandbox_id: str | None = None,
    dry_run: bool = False,
    batch: int = 5000,
) -> int:
    """Delete finished runs (and their events) created before ``older_than``, in
    ``sandbox_id`` only when given; returns how many (``dry_run``: would be deleted)."""
    bound = id_floor("run", older_than.timestamp())
    where = [runs.c.run_id < bound, runs.c.status.not_in(LIVE_STATUSES)]
    if sandbox_id is not None:
        where.append(runs.c.sandbox_id == sandbox_id)
    if dry_run:
        return int(conn.execute(select(func.count()).select_from(runs).where(*where)).scalar_one())
    total = 0
    while True:
        ids = list(conn.execute(select(runs.c.run_id).where(*where).limit(batch)).scalars())
        if not ids:
            return total
        conn.execute(delete(run_events).where(run_events.c.run_id.in_(ids)))
        unroll_runs(conn, ids)  # the usage rollup forgets them with the ledger
        conn.execute(delete(runs).where(runs.c.run_id.in_(ids)))
        total += len(ids)
