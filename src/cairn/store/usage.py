"""Usage aggregates over the run ledger, cost-watch thresholds and their enforcements.

The window becomes a ``run_id`` range (ids sort by creation time, ``cairn.ids``), so the
aggregate reads only the window's slice of an index that starts with ``sandbox_id`` (or
``sandbox_id, agent_id`` / ``sandbox_id, trigger_id`` when filtered) instead of scanning the
ledger: a day's usage costs the same on a ledger of a thousand runs or of a million older
ones. Each group is summed per hour in SQL, so what comes back is at most groups times hours
rows, whatever the number of runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Integer,
    Row,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from cairn.domain.usage import Enforcement, UsageCell, UsageFilter, UsageThreshold
from cairn.ids import id_floor
from cairn.store.schema import agents, runs, threshold_enforcements, usage_thresholds


class _Bucket(FunctionElement[int]):
    """``floor((epoch(created_at) - start) / size)``: which bucket of the window a row is in.

    Date arithmetic is the one thing SQLite and PostgreSQL spell differently, so this is
    compiled per dialect (below) rather than written with either's functions."""

    type = Integer()
    inherit_cache = True
    name = "cairn_bucket"


@compiles(_Bucket, "sqlite")
def _bucket_sqlite(element: _Bucket, compiler: SQLCompiler, **kw: Any) -> str:
    column, start, size = (compiler.process(c, **kw) for c in element.clauses)
    # SQLite keeps timestamps as ISO text; julianday() reads it. The offset is non-negative
    # inside the window, where CAST's truncation is floor.
    return f"CAST(((julianday({column}) - 2440587.5) * 86400.0 - {start}) / {size} AS INTEGER)"


@compiles(_Bucket, "postgresql")
def _bucket_postgresql(element: _Bucket, compiler: SQLCompiler, **kw: Any) -> str:
    column, start, size = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(floor((EXTRACT(EPOCH FROM {column}) - {start}) / {size}) AS INTEGER)"


@compiles(_Bucket)
def _bucket_other(element: _Bucket, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"usage buckets are not written for {compiler.dialect.name}")


def _group_key(where: UsageFilter) -> ColumnElement[Any] | None:
    return {
        "agent": runs.c.agent_slug,
        "trigger": runs.c.trigger_id,
        "model": runs.c.model,
        "hour": None,
    }[where.by]


def aggregate_usage(conn: Connection, where: UsageFilter) -> list[UsageCell]:
    """Runs, tokens and known cost per group and bucket of the window (no empty cells)."""
    bucket = _Bucket(
        runs.c.created_at, literal(where.since, Float), literal(where.bucket_s, Float)
    ).label("bucket")
    key = _group_key(where)
    columns: list[Any] = [
        bucket,
        func.count().label("runs"),
        func.coalesce(func.sum(runs.c.tokens_in), 0).label("tokens_in"),
        func.coalesce(func.sum(runs.c.tokens_out), 0).label("tokens_out"),
        func.sum(runs.c.cost_micros).label("cost_micros"),
        func.count(runs.c.cost_micros).label("priced_runs"),
    ]
    if key is not None:
        columns.insert(0, key.label("key"))
    query = select(*columns).where(
        runs.c.sandbox_id == where.sandbox_id, runs.c.run_id >= id_floor("run", where.since)
    )
    if not where.up_to_now:
        query = query.where(runs.c.run_id < id_floor("run", where.until))
    if where.agent_id is not None:
        query = query.where(runs.c.agent_id == where.agent_id)
    if where.trigger_id is not None:
        query = query.where(runs.c.trigger_id == where.trigger_id)
    query = query.group_by(*([key] if key is not None else []), bucket)
    return [
        UsageCell(
            key=row.key if key is not None else None,
            bucket=int(row.bucket),
            runs=int(row.runs),
            tokens_in=int(row.tokens_in),
            tokens_out=int(row.tokens_out),
            cost_micros=int(row.cost_micros) if row.cost_micros is not None else None,
            priced_runs=int(row.priced_runs),
        )
        for row in conn.execute(query)
    ]


# --- thresholds -------------------------------------------------------------------------


def _to_threshold(row: Row[Any]) -> UsageThreshold:
    return UsageThreshold(
        sandbox_id=row.sandbox_id,
        agent_id=row.agent_id,
        agent_slug=row.slug,
        tokens_per_hour=row.tokens_per_hour,
        cost_micros_per_hour=row.cost_micros_per_hour,
        pause_triggers=bool(row.pause_triggers),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _thresholds() -> Any:
    return select(usage_thresholds, agents.c.slug).join(
        agents, agents.c.agent_id == usage_thresholds.c.agent_id
    )


def put_threshold(conn: Connection, threshold: UsageThreshold) -> None:
    """Set the agent's threshold (replacing any it had)."""
    now = datetime.now(UTC)
    values = {
        "tokens_per_hour": threshold.tokens_per_hour,
        "cost_micros_per_hour": threshold.cost_micros_per_hour,
        "pause_triggers": threshold.pause_triggers,
        "updated_at": now,
    }
    changed = conn.execute(
        update(usage_thresholds)
        .where(
            usage_thresholds.c.sandbox_id == threshold.sandbox_id,
            usage_thresholds.c.agent_id == threshold.agent_id,
        )
        .values(values)
    )
    if not changed.rowcount:
        conn.execute(
            insert(usage_thresholds).values(
                agent_id=threshold.agent_id,
                sandbox_id=threshold.sandbox_id,
                created_at=now,
                **values,
            )
        )


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
    """Keep the record of a breach that paused triggers."""
    conn.execute(
        insert(threshold_enforcements).values(
            enforcement_id=enforcement.enforcement_id,
            sandbox_id=enforcement.sandbox_id,
            agent_id=enforcement.agent_id,
            agent_slug=enforcement.agent_slug,
            metric=enforcement.metric,
            value=enforcement.value,
            threshold=enforcement.threshold,
            window_start=enforcement.window_start,
            trigger_ids=list(enforcement.trigger_ids),
            reason=enforcement.reason,
            enforced_at=enforcement.enforced_at,
        )
    )


def list_enforcements(
    conn: Connection, sandbox_id: str, *, agent_id: str | None = None, limit: int = 50
) -> list[Enforcement]:
    """Enforcements of the sandbox (or of one agent), newest first."""
    query = select(threshold_enforcements).where(threshold_enforcements.c.sandbox_id == sandbox_id)
    if agent_id is not None:
        query = query.where(threshold_enforcements.c.agent_id == agent_id)
    rows = conn.execute(query.order_by(threshold_enforcements.c.enforcement_id.desc()).limit(limit))
    return [
        Enforcement(
            enforcement_id=row.enforcement_id,
            sandbox_id=row.sandbox_id,
            agent_id=row.agent_id,
            agent_slug=row.agent_slug,
            metric=row.metric,
            value=int(row.value),
            threshold=int(row.threshold),
            window_start=row.window_start,
            trigger_ids=tuple(row.trigger_ids or ()),
            reason=row.reason,
            enforced_at=row.enforced_at,
        )
        for row in rows
    ]
