"""The ledger as the backlog: claims are exclusive and fair, and only expired leases of
running runs are reaped (a queued run waits however long it must). Both backends."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from cairn.batches import LoopBatch
from cairn.domain.runs import Run, RunEvent
from cairn.errors import Conflict
from cairn.store import Store
from cairn.store import runs as run_store
from cairn.store.schema import runs, usage_hourly
from tests.store.test_run_ledger import insert, make_agent, make_run


def test_a_queued_run_is_never_reaped_however_old(store: Store) -> None:
    agent = make_agent(store)
    waiting = make_run(agent, status="queued")
    waiting.heartbeat_at = datetime.now(UTC) - timedelta(hours=3)
    insert(store, [waiting])
    with store.begin() as conn:
        assert run_store.reap_stale_runs(conn, stale_after_s=1) == 0
        assert run_store.get_run(conn, "default", waiting.run_id).status == "queued"


def test_an_expired_lease_names_the_worker_and_when(store: Store) -> None:
    agent = make_agent(store)
    insert(store, [make_run(agent, status="queued")])
    past = datetime.now(UTC) - timedelta(minutes=2)
    with store.begin() as conn:
        (claimed,) = run_store.claim_runs(conn, "host-a:41:abc", past, 5)
        assert run_store.reap_stale_runs(conn, stale_after_s=30) == 1
        ended = run_store.get_run(conn, "default", claimed.run_id)
    assert (ended.status, ended.error_type) == ("failed", "worker_lost")
    message = ended.error_message or ""
    assert "worker host-a:41:abc" in message and past.isoformat(timespec="seconds") in message
    assert "not re-run" in message


def test_claims_take_the_oldest_first_and_never_the_same_run_twice(store: Store) -> None:
    agent = make_agent(store)
    queued = [make_run(agent, status="queued") for _ in range(120)]
    insert(store, queued)
    now = datetime.now(UTC)

    def claim(worker: str) -> list[str]:
        taken: list[str] = []
        while True:
            with store.begin() as conn:
                batch = run_store.claim_runs(conn, worker, now, 3)
            if not batch:
                return taken
            assert len(batch) <= 3, "never more than asked for"
            taken.extend(run.run_id for run in batch)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(claim, ["w1", "w2", "w3", "w4"]))
    every = [run_id for taken in results for run_id in taken]
    assert sorted(every) == sorted(run.run_id for run in queued), "each claimed exactly once"
    assert all(taken == sorted(taken) for taken in results), "oldest first"


def test_the_agent_limit_holds_back_extra_runs_and_other_sandboxes_can_be_preferred(
    store: Store,
) -> None:
    busy = make_agent(store, "busy")
    other = make_agent(store, "other", sandbox_id="team-b")
    insert(store, [make_run(busy, status="queued") for _ in range(6)])
    late = make_run(other, status="queued")
    insert(store, [late])
    now = datetime.now(UTC)
    with store.begin() as conn:
        first = run_store.claim_runs(conn, "w", now, 8, agent_limit=2)
    assert sorted(run.agent_slug for run in first) == ["busy", "busy", "other"]
    with store.begin() as conn:
        assert run_store.claim_runs(conn, "w", now, 8, agent_limit=2) == [], "they wait"
        assert run_store.count_queued(conn) == 4, "and stay queued, not dropped"
    insert(store, [make_run(busy, status="queued"), make_run(other, status="queued")])
    with store.begin() as conn:
        preferred = run_store.claim_runs(conn, "w", now, 1, exclude_sandboxes=["default"])
    assert [run.sandbox_id for run in preferred] == ["team-b"]


def test_queued_elsewhere_sees_a_waiting_run_of_any_other_sandbox_only(store: Store) -> None:
    """Sandboxes sorting before, between and after the busy ones are each found; runs of
    the busy sandboxes, and runs of others that are not queued, are not."""
    busy = [make_agent(store, "flood", sandbox_id=s) for s in ("m-busy", "t-busy")]
    insert(store, [make_run(agent, status="queued") for agent in busy for _ in range(5)])
    full = ["t-busy", "m-busy"]
    with store.begin() as conn:
        assert not run_store.queued_elsewhere(conn, full)
        assert run_store.queued_elsewhere(conn, ["m-busy"]), "t-busy waits"
    for sandbox in ("a-before", "p-between", "z-after"):
        other = make_agent(store, "one", sandbox_id=sandbox)
        insert(store, [make_run(other, status="succeeded"), make_run(other, status="running")])
        with store.begin() as conn:
            assert not run_store.queued_elsewhere(conn, full), f"{sandbox}: nothing queued"
        waiting = make_run(other, status="queued")
        insert(store, [waiting])
        with store.begin() as conn:
            assert run_store.queued_elsewhere(conn, full), f"{sandbox} waits"
            run_store.claim_runs(conn, "w", datetime.now(UTC), 1, exclude_sandboxes=full)
            assert not run_store.queued_elsewhere(conn, full), f"{sandbox} was taken"


def test_a_batch_of_final_writes_with_a_reaped_run_is_written_one_run_at_a_time(
    store: Store,
) -> None:
    """``finish_runs`` refuses a batch holding a run a reaper ended and rolled up meanwhile
    (``Conflict``, nothing written); written alone, each final write wins, and the usage
    rollup counts each run once."""
    from cairn.store.usage import roll_up_runs

    agent = make_agent(store)
    lost, alive = make_run(agent, status="running"), make_run(agent, status="running")
    lost.heartbeat_at = datetime.now(UTC) - timedelta(minutes=5)
    insert(store, [lost, alive])
    with store.begin() as conn:
        assert run_store.reap_stale_runs(conn, stale_after_s=60) == 1
        assert roll_up_runs(conn, [lost.run_id]) == 1
    finishes = []
    for run in (lost, alive):
        run.status, run.outcome, run.output_text = "succeeded", "answered", f"done {run.run_id}"
        run.finished_at = datetime.now(UTC)
        finishes.append((run, [RunEvent(1, "finish", {"stop_reason": "end_turn"})]))
    with pytest.raises(Conflict), store.begin() as conn:
        run_store.finish_runs(conn, finishes)
    with store.connect() as conn:
        assert run_store.get_run(conn, "default", alive.run_id).status == "running", "rolled back"

    def write(batch: list[tuple[Run, list[RunEvent]]]) -> list[None]:
        with store.begin() as conn:
            run_store.finish_runs(conn, batch)
        return [None] * len(batch)

    final_writes = LoopBatch(write)

    async def finish_both() -> None:
        await asyncio.gather(*(final_writes.submit(item) for item in finishes))

    asyncio.run(finish_both())
    with store.connect() as conn:
        for run in (lost, alive):
            row = run_store.get_run(conn, "default", run.run_id)
            assert (row.status, row.output_text) == ("succeeded", f"done {run.run_id}")
            assert [e.kind for e in run_store.list_events(conn, run.run_id)] == ["finish"]
        counted = conn.execute(select(func.sum(usage_hourly.c.runs))).scalar_one()
        rolled = conn.execute(select(func.count()).where(runs.c.usage_rolled)).scalar_one()
    assert (counted, rolled) == (2, 2), "each run in the rollup once"
