"""Usage aggregates over the run ledger and its hourly rollup, cost-watch thresholds and
their enforcements.

The window becomes a ``run_id`` range (ids sort by creation time, ``cairn.ids``), so the
aggregate reads only the window's slice of an index that starts with ``sandbox_id`` (or
``sandbox_id, agent_id`` / ``sandbox_id, trigger_id`` when filtered) instead of scanning the
ledger: a day's usage costs the same on a ledger of a thousand runs or of a million older
ones. Each group is summed per hour in SQL, so what comes back is at most groups times hours
rows, whatever the number of runs. A long window reads its whole hours from the hourly
rollup instead, and only the rest raw (docs/cost-watch.md, "The hourly rollup").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from cairn.domain.runs import FINAL_STATUSES
from cairn.domain.usage import BUCKET_S, Enforcement, UsageCell, UsageFilter, UsageThreshold
from cairn.ids import id_floor, id_time_ms
from cairn.store.rows import row_record
from cairn.store.schema import (
    agents,
    runs,
    threshold_enforcements,
    update_or_insert,
    usage_hourly,
    usage_hourly_agents,
    usage_thresholds,
)


class _Hour(FunctionElement[int]):
    """``floor(epoch(created_at) / size)``: the (clock-aligned) bucket a row is in.

    Date arithmetic is the one thing SQLite and PostgreSQL spell differently, so this is
    compiled per dialect (below) rather than written with either's functions. The rollup
    and the raw aggregate use this same expression, so they put every run in the same
    bucket, to the last floating-point digit."""

    type = BigInteger()
    inherit_cache = True
    name = "cairn_hour"


@compiles(_Hour, "sqlite")
def _hour_sqlite(element: _Hour, compiler: SQLCompiler, **kw: Any) -> str:
    column, size = (compiler.process(c, **kw) for c in element.clauses)
    # SQLite keeps timestamps as ISO text; julianday() reads it. Epochs are positive, where
    # CAST's truncation is floor.
    return f"CAST((julianday({column}) - 2440587.5) * 86400.0 / {size} AS INTEGER)"


@compiles(_Hour, "postgresql")
def _hour_postgresql(element: _Hour, compiler: SQLCompiler, **kw: Any) -> str:
    column, size = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(floor(EXTRACT(EPOCH FROM {column}) / {size}) AS BIGINT)"


@compiles(_Hour)
def _hour_other(element: _Hour, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"usage buckets are not written for {compiler.dialect.name}")


def _hour(column: Any, size: float) -> _Hour:
    return _Hour(column, literal_column(repr(float(size))))


def _group_key(where: UsageFilter, table: Table) -> ColumnElement[Any] | None:
    """The column ``where.by`` groups by in ``runs`` or a rollup table (which keeps a
    trigger and a model as text keys)."""
    if where.by == "hour":
        return None
    if where.by == "agent":
        return table.c.agent_slug
    if table is runs:
        return runs.c.trigger_id if where.by == "trigger" else runs.c.model
    return usage_hourly.c.trigger_key if where.by == "trigger" else usage_hourly.c.model_key


def aggregate_usage(
    conn: Connection, where: UsageFilter, *, use_rollup: bool = True
) -> list[UsageCell]:
    """Runs, tokens and known cost per group and clock-aligned bucket of the window (no
    empty cells; bucket 0 is the one holding ``where.since``).

    With ``use_rollup`` (and hourly buckets), the window's whole hours are read from the
    hourly rollup plus the runs not rolled up yet, and only its partial first and last
    hours from the runs: the same cells as the raw aggregate (``use_rollup=False``), in
    time proportional to the hours rather than the runs."""
    first = int(where.since // where.bucket_s)
    if not use_rollup or where.bucket_s != BUCKET_S:
        return _raw(conn, where, first, where.since, None if where.up_to_now else where.until)
    full_from = math.ceil(where.since / BUCKET_S)  # first whole hour
    full_to = int(where.until // BUCKET_S)  # whole hours end here (exclusive)
    if where.up_to_now:
        # A window up to now holds all of the current hour that exists: its rolled runs are
        # in the rollup like any whole hour's (live ones are read raw, as pending).
        full_to = math.ceil(where.until / BUCKET_S)
    if full_to <= full_from:
        return _raw(conn, where, first, where.since, None if where.up_to_now else where.until)
    cells = _raw(conn, where, first, where.since, full_from * BUCKET_S)
    cells += _rolled(conn, where, first, full_from, full_to)
    cells += _raw(conn, where, first, full_from * BUCKET_S, full_to * BUCKET_S, pending=True)
    cells += _raw(conn, where, first, full_to * BUCKET_S, None if where.up_to_now else where.until)
    return _merge(cells)


def _raw(
    conn: Connection,
    where: UsageFilter,
    first: int,
    since: float,
    until: float | None,
    *,
    pending: bool = False,
) -> list[UsageCell]:
    """The aggregate over the runs themselves, created in ``[since, until)`` (by id);
    ``pending``: only those not in the rollup yet (read through their partial index)."""
    if until is not None and until <= since:
        return []
    sums = [
        func.count().label("runs"),
        func.coalesce(func.sum(runs.c.tokens_in), 0).label("tokens_in"),
        func.coalesce(func.sum(runs.c.tokens_out), 0).label("tokens_out"),
        func.sum(runs.c.cost_micros).label("cost_micros"),
        func.count(runs.c.cost_micros).label("priced_runs"),
    ]
    conditions = [runs.c.sandbox_id == where.sandbox_id, runs.c.run_id >= id_floor("run", since)]
    if until is not None:
        conditions.append(runs.c.run_id < id_floor("run", until))
    if pending:
        conditions.append(runs.c.usage_rolled == false())
    if where.agent_id is not None:
        conditions.append(runs.c.agent_id == where.agent_id)
    if where.trigger_id is not None:
        conditions.append(runs.c.trigger_id == where.trigger_id)
    bucket = (_hour(runs.c.created_at, where.bucket_s) - first).label("bucket")
    return _cells(conn, _group_key(where, runs), bucket, sums, conditions)


def _rolled(
    conn: Connection, where: UsageFilter, first: int, full_from: int, full_to: int
) -> list[UsageCell]:
    """The rollup's cells for the whole hours ``[full_from, full_to)`` (by run id), from the
    per-agent table when the question allows it (far fewer rows)."""
    narrow = where.by in ("agent", "hour") and where.trigger_id is None
    table = usage_hourly_agents if narrow else usage_hourly
    sums = [func.sum(table.c[name]).label(name) for name in _SUMS]
    conditions = [
        table.c.sandbox_id == where.sandbox_id,
        table.c.id_hour >= full_from,
        table.c.id_hour < full_to,
    ]
    if where.agent_id is not None:
        conditions.append(table.c.agent_id == where.agent_id)
    if where.trigger_id is not None:
        conditions.append(usage_hourly.c.trigger_key == where.trigger_id)
    bucket = (table.c.hour - first).label("bucket")
    return _cells(conn, _group_key(where, table), bucket, sums, conditions)


def _cells(
    conn: Connection,
    key: ColumnElement[Any] | None,
    bucket: Any,
    sums: list[Any],
    conditions: list[Any],
) -> list[UsageCell]:
    """``sums`` (runs, tokens in and out, cost, priced runs) per group ``key`` (``None``: one
    group) and ``bucket`` over the rows ``conditions`` select. The rollup keeps "" for no
    trigger or model, read back as ``None``; cost is ``None`` where no run was priced.
    Fetched at once as plain tuples: a long window is thousands of cells, and per-row result
    objects were most of its time."""
    keys = [key] if key is not None else []
    query = select(*(k.label("key") for k in keys), bucket, *sums).where(*conditions)
    rows = [tuple(row) for row in conn.execute(query.group_by(*keys, bucket)).all()]
    if key is None:
        rows = [(None, *row) for row in rows]
    return [
        UsageCell(
            key=group or None,
            bucket=int(at),
            runs=int(count),
            tokens_in=int(t_in),
            tokens_out=int(t_out),
            cost_micros=int(cost) if priced else None,
            priced_runs=int(priced),
        )
        for group, at, count, t_in, t_out, cost, priced in rows
    ]


def _merge(cells: list[UsageCell]) -> list[UsageCell]:
    """One cell per group and bucket."""
    merged: dict[tuple[str | None, int], UsageCell] = {}
    for cell in cells:
        at = (cell.key, cell.bucket)
        seen = merged.get(at)
        if seen is None:
            merged[at] = cell
            continue
        costs = [c for c in (seen.cost_micros, cell.cost_micros) if c is not None]
        merged[at] = UsageCell(
            key=cell.key,
            bucket=cell.bucket,
            runs=seen.runs + cell.runs,
            tokens_in=seen.tokens_in + cell.tokens_in,
            tokens_out=seen.tokens_out + cell.tokens_out,
            cost_micros=sum(costs) if costs else None,
            priced_runs=seen.priced_runs + cell.priced_runs,
        )
    return list(merged.values())


# --- the hourly rollup --------------------------------------------------------------------


def _rollup_select() -> Select[Any]:
    """What the rollup needs of each run it adds or takes out."""
    return select(
        runs.c.run_id,
        runs.c.sandbox_id,
        _hour(runs.c.created_at, BUCKET_S).label("hour"),
        runs.c.agent_id,
        runs.c.agent_slug,
        runs.c.trigger_id,
        runs.c.model,
        runs.c.tokens_in,
        runs.c.tokens_out,
        runs.c.cost_micros,
    )


def roll_up_runs(
    conn: Connection, run_ids: Sequence[str] | None = None, *, limit: int = 5000
) -> int:
    """Add finished runs to the hourly rollup and mark them rolled: ``run_ids`` (those of
    them that are final and not rolled yet), else up to ``limit`` pending ones of any
    sandbox (what a catch-up pass or a rebuild takes in turn). Returns how many."""
    query = _rollup_select().where(
        runs.c.usage_rolled == false(), runs.c.status.in_(FINAL_STATUSES)
    )
    if run_ids is not None:
        query = query.where(runs.c.run_id.in_(list(run_ids)))
    else:
        query = query.order_by(runs.c.sandbox_id, runs.c.run_id).limit(limit)
    rows = conn.execute(query).all()
    if not rows:
        return 0
    _apply(conn, rows, sign=1)
    _mark_rolled(conn, [row.run_id for row in rows], rolled=True)
    return len(rows)


def roll_up_finished(conn: Connection, run_ids: Sequence[str]) -> None:
    """Add runs that the caller has just written final and marked rolled (in this
    transaction) to both rollup tables: an upsert per run and table, read from the row
    itself (so its bucket is SQL's, exactly as ``roll_up_runs`` computes it). The path of
    the final write, two cached statements (each executed for all ``run_ids`` at once)
    instead of a select and two reads and writes."""
    params = [
        {"one_run_id": run_id, "one_id_hour": id_time_ms(run_id) // 3_600_000} for run_id in run_ids
    ]
    for statement in _roll_up_one(conn.dialect.name):
        conn.execute(statement, params)


@functools.cache
def _roll_up_one(dialect: str) -> tuple[Any, ...]:
    """``INSERT … SELECT … FROM runs WHERE run_id = :one_run_id ON CONFLICT DO UPDATE``
    adding the run's sums, for each rollup table."""
    from sqlalchemy.dialects import postgresql, sqlite

    upserts: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    if dialect not in upserts:
        raise CompileError(f"usage buckets are not written for {dialect}")
    upsert = upserts[dialect]
    priced = runs.c.cost_micros.is_not(None)
    sums: tuple[Any, ...] = (
        literal_column("1").label("runs"),
        runs.c.tokens_in,
        runs.c.tokens_out,
        func.coalesce(runs.c.cost_micros, 0).label("cost_micros"),
        case((priced, 1), else_=0).label("priced_runs"),
    )
    key_columns: tuple[Any, ...] = (
        runs.c.sandbox_id,
        bindparam("one_id_hour", type_=BigInteger()).label("id_hour"),
        _hour(runs.c.created_at, BUCKET_S).label("hour"),
        runs.c.agent_id,
        runs.c.agent_slug,
        func.coalesce(runs.c.trigger_id, "").label("trigger_key"),
        func.coalesce(runs.c.model, "").label("model_key"),
    )
    out = []
    for table, key in ((usage_hourly, _FULL_KEY), (usage_hourly_agents, _AGENT_KEY)):
        source = select(*key_columns[: len(key)], *sums).where(
            runs.c.run_id == bindparam("one_run_id")
        )
        statement = upsert(table).from_select([*key, *_SUMS], source)
        out.append(
            statement.on_conflict_do_update(
                index_elements=[table.c[name] for name in key],
                set_={name: table.c[name] + statement.excluded[name] for name in _SUMS},
            )
        )
    return tuple(out)


def unroll_runs(conn: Connection, run_ids: Sequence[str]) -> None:
    """Take rolled runs back out of the rollup and mark them pending again (before they
    are deleted, or rewritten by a late final write)."""
    query = _rollup_select().where(runs.c.usage_rolled == true(), runs.c.run_id.in_(list(run_ids)))
    rows = conn.execute(query).all()
    if rows:
        _apply(conn, rows, sign=-1)
        _mark_rolled(conn, [row.run_id for row in rows], rolled=False)


def _mark_rolled(conn: Connection, ids: list[str], *, rolled: bool) -> None:
    """Set ``usage_rolled`` on these runs, a thousand ids to a statement."""
    for chunk in range(0, len(ids), 1000):
        batch = ids[chunk : chunk + 1000]
        conn.execute(update(runs).where(runs.c.run_id.in_(batch)).values(usage_rolled=rolled))


def rebuild_rollup(conn: Connection) -> None:
    """Empty the rollup and mark every run pending (then ``roll_up_runs`` until 0)."""
    conn.execute(delete(usage_hourly))
    conn.execute(delete(usage_hourly_agents))
    conn.execute(update(runs).where(runs.c.usage_rolled == true()).values(usage_rolled=False))


_SUMS = ("runs", "tokens_in", "tokens_out", "cost_micros", "priced_runs")
_FULL_KEY = ("sandbox_id", "id_hour", "hour", "agent_id", "agent_slug", "trigger_key", "model_key")
_AGENT_KEY = _FULL_KEY[:5]


def _apply(conn: Connection, rows: Sequence[Row[Any]], *, sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) these runs' sums in both rollup tables."""
    full: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        at = (
            row.sandbox_id,
            id_time_ms(row.run_id) // 3_600_000,
            int(row.hour),
            row.agent_id,
            row.agent_slug,
            row.trigger_id or "",
            row.model or "",
        )
        entry = full.setdefault(at, [0, 0, 0, 0, 0])
        priced = row.cost_micros is not None
        entry[0] += sign
        entry[1] += sign * int(row.tokens_in)
        entry[2] += sign * int(row.tokens_out)
        entry[3] += sign * int(row.cost_micros) if priced else 0
        entry[4] += sign if priced else 0
    agent_level: dict[tuple[Any, ...], list[int]] = {}
    for at, values in full.items():
        entry = agent_level.setdefault(at[:5], [0, 0, 0, 0, 0])
        for index, value in enumerate(values):
            entry[index] += value
    _upsert(conn, usage_hourly, _FULL_KEY, full)
    _upsert(conn, usage_hourly_agents, _AGENT_KEY, agent_level)


def _upsert(
    conn: Connection, table: Table, key: tuple[str, ...], sums: dict[tuple[Any, ...], list[int]]
) -> None:
    """Add ``sums`` to the rows with these keys, creating the missing ones, in three
    statements whatever their number (an executemany each for updates and inserts)."""
    sandboxes = sorted({at[0] for at in sums})
    hours = [at[1] for at in sums]
    span = (
        (table.c.sandbox_id.in_(sandboxes))
        & (table.c.id_hour >= min(hours))
        & (table.c.id_hour <= max(hours))
    )
    existing = {
        tuple(row)
        for row in conn.execute(select(*(table.c[name] for name in key)).where(span))
        if tuple(row) in sums
    }
    changes = [
        {f"k_{name}": value for name, value in zip(key, at, strict=True)}
        | {f"d_{name}": value for name, value in zip(_SUMS, values, strict=True)}
        for at, values in sums.items()
        if at in existing
    ]
    if changes:
        statement = (
            update(table)
            .where(*(table.c[name] == bindparam(f"k_{name}") for name in key))
            .values({name: table.c[name] + bindparam(f"d_{name}") for name in _SUMS})
        )
        conn.execute(statement, changes)
    added = [
        dict(zip(key, at, strict=True)) | dict(zip(_SUMS, values, strict=True))
        for at, values in sums.items()
        if at not in existing and values[0] > 0
    ]
    if added:
        conn.execute(insert(table), added)
    if any(values[0] < 0 for values in sums.values()):
        conn.execute(delete(table).where(span, table.c.runs <= 0))


# --- thresholds -------------------------------------------------------------------------


def _to_threshold(row: Row[Any]) -> UsageThreshold:
    return row_record(
        UsageThreshold, row, agent_slug=row.slug, pause_triggers=bool(row.pause_triggers)
    )


def _thresholds() -> Any:
    return select(usage_thresholds, agents.c.slug).join(
        agents, agents.c.agent_id == usage_thresholds.c.agent_id
    )


def put_threshold(conn: Connection, threshold: UsageThreshold) -> None:
    """Set the agent's threshold (replacing any it had)."""
    key = {"sandbox_id": threshold.sandbox_id, "agent_id": threshold.agent_id}
    values = {
        "tokens_per_hour": threshold.tokens_per_hour,
        "cost_micros_per_hour": threshold.cost_micros_per_hour,
        "pause_triggers": threshold.pause_triggers,
    }
    update_or_insert(conn, usage_thresholds, key, values, datetime.now(UTC))


def get_threshold(conn: Connection, sandbox_id: str, agent_id: str) -> UsageThreshold | None:
    """The agent's threshold, if one is set."""
    row = conn.execute(
        _thresholds().where(
            usage_thresholds.c.sandbox_id == sandbox_id, usage_thresholds.c.agent_id == agent_id
        )
    ).first()
    return _to_threshold(row) if row is not None else None


def list_thresholds(conn: Connection, sandbox_id: str) -> list[UsageThreshold]:
    """Every threshold of the sandbox, by agent slug."""
    rows = conn.execute(
        _thresholds().where(usage_thresholds.c.sandbox_id == sandbox_id).order_by(agents.c.slug)
    )
    return [_to_threshold(row) for row in rows]


def delete_threshold(conn: Connection, sandbox_id: str, agent_id: str) -> bool:
    """Stop watching the agent; ``False`` if it had no threshold."""
    result = conn.execute(
        delete(usage_thresholds).where(
            usage_thresholds.c.sandbox_id == sandbox_id, usage_thresholds.c.agent_id == agent_id
        )
    )
    return bool(result.rowcount)


# --- enforcements -----------------------------------------------------------------------


def record_enforcement(conn: Connection, enforcement: Enforcement) -> None:
    """Keep the record of a breach that paused triggers (its fields are the table's columns)."""
    values = asdict(enforcement) | {"trigger_ids": list(enforcement.trigger_ids)}
    conn.execute(insert(threshold_enforcements).values(values))


def list_enforcements(
    conn: Connection, sandbox_id: str, *, agent_id: str | None = None, limit: int = 50
) -> list[Enforcement]:
    """Enforcements of the sandbox (or of one agent), newest first."""
    query = select(threshold_enforcements).where(threshold_enforcements.c.sandbox_id == sandbox_id)
    if agent_id is not None:
        query = query.where(threshold_enforcements.c.agent_id == agent_id)
    rows = conn.execute(query.order_by(threshold_enforcements.c.enforcement_id.desc()).limit(limit))
    return [
        row_record(
            Enforcement,
            row,
            value=int(row.value),
            threshold=int(row.threshold),
            trigger_ids=tuple(row.trigger_ids or ()),
        )
        for row in rows
    ]
