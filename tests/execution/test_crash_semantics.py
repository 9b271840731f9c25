"""Crash semantics with real processes (docs/ledger.md): a SIGKILLed worker's runs end
``worker_lost`` through their lease and are never re-run; queued runs go to a surviving
worker; a backlog far longer than the lease is never reaped; an embedded server stopped
with SIGTERM and then SIGKILL resumes its queued runs. SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import httpx

import cairn
from cairn.execution.embedded import EmbeddedBackend
from cairn.services import runs as run_service
from cairn.services.app import App
from tests.api.conftest import Keys
from tests.api.helpers import slow_settings
from tests.execution.processes import Cluster, Recorder, effect_settings, eventually, scaled

FINAL = ("succeeded", "failed", "cancelled")


def _all_final(cluster: Cluster, run_ids: list[str]) -> dict[str, Any] | None:
    """Every run row, once all of ``run_ids`` are final."""
    rows = cluster.runs()
    return rows if all(rows[run_id].status in FINAL for run_id in run_ids) else None


def _statuses(cluster: Cluster, run_ids: list[str]) -> dict[str, str]:
    rows = cluster.runs()
    return {run_id: rows[run_id].status for run_id in run_ids}


def test_a_killed_worker_loses_its_runs_to_the_lease_and_its_queue_to_the_survivor(
    cluster: Cluster, keys: Keys, recorder: Recorder
) -> None:
    api = cluster.serve("--no-workers")
    first = cluster.worker("--concurrency", "20")
    client = cluster.client(api, keys.owner)
    client.agents.create("slow", "x", model_settings=effect_settings(recorder.url, 60))
    client.agents.create("quick", "x", model_settings=effect_settings(recorder.url, 0))
    in_flight = [client.agents.fire("slow", event_payload={"n": n}).run_id for n in range(20)]
    eventually(
        lambda: (
            (len(recorder.lines()), Counter(_statuses(cluster, in_flight).values()))
            == (20, {"running": 20})
        ),
        within_s=30,
        what="20 runs in flight on the first worker, each past its side effect",
    )
    queued = [client.agents.fire("quick", event_payload={"n": n}).run_id for n in range(20, 70)]
    assert set(_statuses(cluster, queued).values()) == {"queued"}, "the only worker is full"

    first.kill()
    cluster.worker("--concurrency", "8")

    rows = eventually(
        lambda: _all_final(cluster, in_flight + queued),
        within_s=120,
        what="every run final",
    )
    for run_id in in_flight:
        row = rows[run_id]
        assert (row.status, row.error_type) == ("failed", "worker_lost"), row.error_message
        assert row.worker_id in row.error_message and "not re-run" in row.error_message
    survivors = {rows[run_id].worker_id for run_id in queued}
    assert all(rows[run_id].status == "succeeded" for run_id in queued)
    assert len(survivors) == 1 and rows[in_flight[0]].worker_id not in survivors
    effects = Counter(recorder.lines())
    assert sorted(int(line[2:]) for line in effects) == list(range(70)), "none lost"
    assert set(effects.values()) == {1}, "none ran twice"


def test_a_backlog_far_longer_than_the_lease_is_never_reaped_while_lists_are_polled(
    cluster: Cluster, keys: Keys, recorder: Recorder, ledger_app: App
) -> None:
    # Default size: lease 2 s; 24 runs of 1 s on 3 slots take about 8 s, so the last run
    # waits 4 leases. Full size: the default 30 s lease; 200 runs of 10 s on 8 slots take
    # about 250 s, the last run waiting 8 leases.
    count, run_s, slots = scaled(24, 200), scaled(1, 10), scaled(3, 8)
    lease_s = scaled(2, 30)
    api_node = {"CAIRN_LEASE_S": str(lease_s)}
    api = cluster.serve("--workers", str(slots), **api_node)
    client = cluster.client(api, keys.owner)
    client.agents.create("steady", "x", model_settings=effect_settings(recorder.url, run_s))
    ledger_app.executor = EmbeddedBackend(ledger_app)  # accepted at once, as a node does
    fired = [
        run_service.start_fire(ledger_app, "default", "steady", {"n": n}, kind="manual").run.run_id
        for n in range(count)
    ]
    poll_s = scaled(200, 1000) / 1000

    async def poll_until_done() -> None:
        async with cairn.AsyncClient(api.url, api_key=keys.owner) as polling:
            with anyio.fail_after(count * run_s / slots * 3 + 30):
                while True:  # what the dashboard and an API client do, every poll_s
                    page = await polling.agents.runs.list("steady", limit=count)
                    await polling.transport.call("get_status")
                    async with httpx.AsyncClient(
                        base_url=api.url, cookies={"cairn_key": keys.owner}, timeout=30
                    ) as web:
                        await web.get("/runs")
                    if all(run.status in FINAL for run in page.runs) and len(page.runs) == count:
                        return
                    await anyio.sleep(poll_s)

    anyio.run(poll_until_done)
    rows = cluster.runs()
    assert {rows[run_id].status for run_id in fired} == {"succeeded"}, "none reaped"
    waited = max(
        (rows[run_id].started_at - rows[run_id].created_at).total_seconds() for run_id in fired
    )
    assert waited > 2 * lease_s, f"the backlog outlived the lease (waited {waited:.1f} s)"
    assert Counter(recorder.lines()) == Counter(f"n={n}" for n in range(count))


def test_an_embedded_server_stopped_then_killed_resumes_its_queued_runs(
    cluster: Cluster, keys: Keys, ledger_app: App
) -> None:
    server = cluster.serve("--workers", "2")
    client = cluster.client(server, keys.owner)
    client.agents.create("batch", "x", model_settings=slow_settings(turns=1, delay_s=0.1))
    # 500 fires accepted the way an API-only node accepts them (the same service call),
    # written from here so the intake does not dominate the test's time.
    ledger_app.executor = EmbeddedBackend(ledger_app)
    fired = [
        run_service.start_fire(ledger_app, "default", "batch", {"n": n}, kind="manual").run.run_id
        for n in range(500)
    ]
    eventually(
        lambda: Counter(_statuses(cluster, fired).values())["succeeded"] >= 10,
        within_s=30,
        what="the server taking queued runs",
    )
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught: -15 is normal.
    assert server.terminate() in (0, -15)
    after_term = Counter(_statuses(cluster, fired).values())
    assert after_term["queued"] > 0, after_term
    assert after_term["cancelled"] == 0 and after_term["running"] == 0, after_term

    again = cluster.serve("--workers", "2")
    eventually(
        lambda: (
            Counter(_statuses(cluster, fired).values())["succeeded"] >= after_term["succeeded"] + 10
        ),
        within_s=30,
        what="the restarted server taking queued runs",
    )
    again.kill()
    cluster.serve("--workers", "8")
    rows = eventually(
        lambda: _all_final(cluster, fired),
        within_s=150,
        what="all 500 final after the restart",
    )
    outcome = Counter((rows[r].status, rows[r].error_type) for r in fired)
    lost = outcome[("failed", "worker_lost")]
    assert outcome[("succeeded", None)] + lost == 500, outcome
    assert lost <= 2, "only the runs in flight at the SIGKILL (2 slots) end worker_lost"
    assert all(
        rows[r].output_text == "All steps done for ."
        for r in fired
        if r not in lost_ids(rows, fired)
    )


def lost_ids(rows: dict[str, Any], fired: list[str]) -> set[str]:
    """Runs ended by the reaper."""
    return {r for r in fired if rows[r].error_type == "worker_lost"}
