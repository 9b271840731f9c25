"""The ledger's listings, pagination, retention and stale-run reaping, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cairn.domain.agents import Agent, ModelSettings
from cairn.domain.runs import Run, RunEvent, RunFilter, RunKind, RunStatus
from cairn.errors import AlreadyExists, NotFound
from cairn.ids import id_at, new_id
from cairn.store import Store
from cairn.store import agents as agent_store
from cairn.store import runs as run_store
from cairn.store.sandboxes import ensure_sandbox


def make_agent(store: Store, slug: str = "support", sandbox_id: str = "default") -> Agent:
    now = datetime.now(UTC)
    agent = Agent(
        agent_id=new_id("agt"),
        sandbox_id=sandbox_id,
        slug=slug,
        name=slug,
        description="",
        system_prompt="p",
        tool_sources=None,
        tool_allowlist=[],
        model_settings=ModelSettings(),
        created_at=now,
        updated_at=now,
    )
    with store.begin() as conn:
        ensure_sandbox(conn, sandbox_id)
        agent_store.create_agent(conn, agent)
    return agent


def make_run(
    agent: Agent,
    *,
    status: RunStatus = "succeeded",
    kind: RunKind = "test",
    trigger_id: str | None = None,
    created_at: datetime | None = None,
) -> Run:
    now = created_at or datetime.now(UTC)
    return Run(
        run_id=id_at("run", now.timestamp()) if created_at else new_id("run"),
        sandbox_id=agent.sandbox_id,
        agent_id=agent.agent_id,
        agent_slug=agent.slug,
        agent_version=agent.version,
        kind=kind,
        status=status,
        event_payload={"n": 1},
        trigger_id=trigger_id,
        created_at=now,
        heartbeat_at=now,
    )


def insert(store: Store, runs: list[Run]) -> None:
    with store.begin() as conn:
        for run in runs:
            run_store.create_run(conn, run)


def test_runs_list_newest_first_and_pages_by_run_id_cursor(store: Store) -> None:
    agent = make_agent(store)
    runs = [make_run(agent) for _ in range(25)]
    insert(store, runs)
    expected = [r.run_id for r in reversed(runs)]
    with store.connect() as conn:
        first = run_store.list_runs(conn, RunFilter("default", agent.agent_id, limit=10))
        second = run_store.list_runs(
            conn, RunFilter("default", agent.agent_id, before=first[-1].run_id, limit=10)
        )
        third = run_store.list_runs(
            conn, RunFilter("default", agent.agent_id, before=second[-1].run_id, limit=10)
        )
    pages = [r.run_id for r in first + second + third]
    assert pages == expected
    assert len(third) == 5


def test_runs_filter_by_status_trigger_kind_and_time_window(store: Store) -> None:
    agent = make_agent(store)
    old = datetime.now(UTC) - timedelta(days=3)
    failed = make_run(agent, status="failed")
    by_trigger = make_run(agent, kind="trigger", trigger_id="trg_1")
    manual = make_run(agent, kind="manual")
    old_run = make_run(agent, created_at=old)
    insert(store, [failed, by_trigger, manual, old_run])

    def ids(**kwargs: object) -> list[str]:
        with store.connect() as conn:
            where = RunFilter("default", agent.agent_id, **kwargs)  # type: ignore[arg-type]
            return [r.run_id for r in run_store.list_runs(conn, where)]

    assert ids(status="failed") == [failed.run_id]
    assert ids(trigger_id="trg_1") == [by_trigger.run_id]
    assert ids(kind="manual") == [manual.run_id]
    recent = ids(since=(datetime.now(UTC) - timedelta(days=1)).timestamp())
    assert old_run.run_id not in recent and len(recent) == 3
    assert ids(until=(datetime.now(UTC) - timedelta(days=1)).timestamp()) == [old_run.run_id]


def test_a_sandbox_never_lists_another_sandboxes_runs(store: Store) -> None:
    mine = make_agent(store)
    theirs = make_agent(store, sandbox_id="other")
    insert(store, [make_run(mine), make_run(theirs)])
    with store.connect() as conn:
        listed = run_store.list_runs(conn, RunFilter("default"))
        assert [r.agent_id for r in listed] == [mine.agent_id]
        other_run = run_store.list_runs(conn, RunFilter("other"))[0]
        with pytest.raises(NotFound):
            run_store.get_run(conn, "default", other_run.run_id)


def test_duplicate_slug_in_a_sandbox_is_refused_but_allowed_in_another(store: Store) -> None:
    make_agent(store)
    with pytest.raises(AlreadyExists, match="support"):
        make_agent(store)
    make_agent(store, sandbox_id="other")


def test_prune_deletes_old_finished_runs_and_their_events_but_not_live_ones(
    store: Store,
) -> None:
    agent = make_agent(store)
    long_ago = datetime.now(UTC) - timedelta(days=40)
    old_done = make_run(agent, created_at=long_ago)
    old_live = make_run(agent, status="running", created_at=long_ago)
    fresh = make_run(agent)
    insert(store, [old_done, old_live, fresh])
    with store.begin() as conn:
        run_store.append_events(
            conn, old_done.run_id, [RunEvent(1, "finish", {"stop_reason": "end_turn"})]
        )
        deleted = run_store.prune_runs(conn, older_than=datetime.now(UTC) - timedelta(days=30))
    assert deleted == 1
    with store.connect() as conn:
        remaining = {r.run_id for r in run_store.list_runs(conn, RunFilter("default"))}
        assert remaining == {old_live.run_id, fresh.run_id}
        assert run_store.list_events(conn, old_done.run_id) == []


def test_a_live_run_without_heartbeat_is_reaped_as_failed_with_a_reason(store: Store) -> None:
    agent = make_agent(store)
    stale = make_run(agent, status="running")
    stale.heartbeat_at = datetime.now(UTC) - timedelta(minutes=5)
    alive = make_run(agent, status="running")
    insert(store, [stale, alive])
    with store.begin() as conn:
        assert run_store.reap_stale_runs(conn, stale_after_s=60) == 1
        reaped = run_store.get_run(conn, "default", stale.run_id)
        untouched = run_store.get_run(conn, "default", alive.run_id)
    assert reaped.status == "failed"
    assert reaped.error_type == "worker_lost"
    assert "heartbeat" in (reaped.error_message or "")
    assert reaped.finished_at is not None
    assert untouched.status == "running"


def test_events_are_read_back_in_order_and_resume_after_a_sequence(store: Store) -> None:
    agent = make_agent(store)
    run = make_run(agent)
    insert(store, [run])
    events = [RunEvent(i, "text", {"delta": f"w{i} "}) for i in range(1, 6)]
    with store.begin() as conn:
        run_store.append_events(conn, run.run_id, events[:3])
        run_store.append_events(conn, run.run_id, events[3:])
    with store.connect() as conn:
        assert [e.seq for e in run_store.list_events(conn, run.run_id)] == [1, 2, 3, 4, 5]
        assert [e.data["delta"] for e in run_store.list_events(conn, run.run_id, after_seq=3)] == [
            "w4 ",
            "w5 ",
        ]


def test_timestamps_read_back_timezone_aware_in_utc(store: Store) -> None:
    agent = make_agent(store)
    run = make_run(agent)
    insert(store, [run])
    with store.connect() as conn:
        stored = run_store.get_run(conn, "default", run.run_id)
    assert stored.created_at is not None and stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert abs((stored.created_at - run.created_at).total_seconds()) < 0.001  # type: ignore[operator]


def test_listing_the_last_runs_of_an_agent_walks_an_index_without_sorting(
    store: Store,
) -> None:
    """What keeps "the last 20 runs" the same cost at a hundred or a million rows: the plan
    reads the per-agent index in order and never sorts the table."""
    agent = make_agent(store)
    insert(store, [make_run(agent) for _ in range(30)])
    from sqlalchemy.dialects import postgresql, sqlite

    from cairn.store.runs import listing_query

    for where in (
        RunFilter("default", agent.agent_id),
        RunFilter("default", agent.agent_id, status="failed"),
        RunFilter("default", trigger_id="trg_x"),
    ):
        query = listing_query(where)
        with store.connect() as conn:
            if store.dialect == "sqlite":
                compiled = query.compile(dialect=sqlite.dialect())
                rows = conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values())
                ).all()
                plan = " ".join(str(row[-1]) for row in rows)
                assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
                assert "TEMP B-TREE" not in plan, plan
            else:
                conn.exec_driver_sql("SET enable_seqscan = off")
                compiled = query.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
                rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).all()
                plan = " ".join(str(row[0]) for row in rows)
                assert "Index" in plan, plan
                assert "Sort" not in plan, plan
