"""Scale-out with real processes: a webhook burst against a small backlog (every 2xx event
decided and its run completed; refusals are 503 with Retry-After and not in the ledger),
and two API-only nodes with two workers on one PostgreSQL (a schedule fires once per
tick, fires through either node run on either worker, follow from either node is live,
cancel reaches the other process within a second)."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import select

from cairn.services.app import App
from cairn.services.triggers import create_trigger
from cairn.services.webhooks import add_webhook_source, sign
from cairn.store import open_store
from cairn.store import sources as source_store
from cairn.store.schema import events as events_table
from cairn.store.schema import trigger_decisions
from tests.api.conftest import Keys
from tests.api.helpers import Bounded, hanging_settings, slow_settings
from tests.execution.processes import Cluster, eventually, scaled

FINAL = ("succeeded", "failed", "cancelled")


def _ledger_events(cluster: Cluster) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    store = open_store(cluster.database_url)
    try:
        with store.connect() as conn:
            found = {row.sender_event_id: row for row in conn.execute(select(events_table))}
            decisions: dict[str, list[Any]] = {}
            for row in conn.execute(select(trigger_decisions)):
                decisions.setdefault(row.event_id, []).append(row)
        return found, decisions
    finally:
        store.close()


def test_a_webhook_burst_is_decided_and_run_in_full_or_refused_with_retry_after(
    cluster: Cluster, keys: Keys, ledger_app: App
) -> None:
    # Default size: 300 events against a backlog of 10 on 2 workers, so most are refused.
    # Full size: 5,000 events against a backlog of 1,000 on 8 workers.
    events = scaled(300, 5000)
    server = cluster.serve("--workers", str(scaled(2, 8)), "--max-backlog", str(scaled(10, 1000)))
    client = cluster.client(server, keys.owner)
    delay_s = scaled(300, 50) / 1000
    client.agents.create("hooked", "x", model_settings=slow_settings(turns=1, delay_s=delay_s))
    hook = add_webhook_source(ledger_app, "default", "burst")
    create_trigger(ledger_app, "default", "hooked", hook.source.source_id)
    answers: dict[str, httpx.Response] = {}

    async def burst() -> None:
        limits = httpx.Limits(max_connections=32)
        # 32 senders, each with one delivery in flight: thousands of requests queued inside
        # httpx's pool instead cost the client quadratic time to hand out connections.
        senders = anyio.CapacityLimiter(32)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as http:

            async def deliver(n: int) -> None:
                async with senders:
                    await send(n)

            async def send(n: int) -> None:
                sender_id = f"burst-{n}"
                body = json.dumps({"type": "job", "id": sender_id, "payload": {"n": n}}).encode()
                for _attempt in range(3):  # a sender resends when the connection drops
                    stamp = str(int(time.time()))
                    try:
                        answers[sender_id] = await http.post(
                            hook.path,
                            content=body,
                            headers={
                                "X-Cairn-Timestamp": stamp,
                                "X-Cairn-Signature": sign(hook.secret or "", stamp, body),
                                "Content-Type": "application/json",
                            },
                        )
                        return
                    except httpx.TransportError:
                        continue

            with anyio.fail_after(scaled(90, 600)):
                async with anyio.create_task_group() as group:
                    for n in range(events):
                        group.start_soon(deliver, n)

    anyio.run(burst)
    assert len(answers) == events
    codes = Counter(response.status_code for response in answers.values())
    assert set(codes) <= {200, 202, 503}, codes
    assert codes[503] > 0 and codes[202] > 10, codes
    accepted = {sid for sid, response in answers.items() if response.status_code in (200, 202)}
    for response in answers.values():
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json()["error"] == "Busy"
        elif response.status_code == 202:  # (200: a resent delivery, already decided)
            assert [d["decision"] for d in response.json()["decisions"]] == ["fired"]
    stored, decisions = _ledger_events(cluster)
    assert set(stored) == accepted, "refused events are not in the ledger; accepted ones are"
    fired: list[str] = []
    for sid in accepted:
        (decision,) = decisions[stored[sid].event_id]
        assert decision.decision == "fired"
        fired.append(decision.run_id)
    rows = eventually(
        lambda: cluster.all_final(fired),
        within_s=scaled(120, 600),
        what="every fired run final",
    )
    assert {rows[run_id].status for run_id in fired} == {"succeeded"}
    assert len(rows) == len(accepted), "no run without an accepted event"


@pytest.fixture
def postgres_only(database_url: str) -> None:
    """Several machines share a ledger only on PostgreSQL."""
    if not database_url.startswith("postgres"):
        pytest.skip("scale-out across nodes is a PostgreSQL set-up")


def test_two_api_nodes_and_two_workers_share_one_postgresql(
    postgres_only: None, cluster: Cluster, keys: Keys, ledger_app: App
) -> None:
    from cairn.services.schedules import add_schedule_source

    first = cluster.serve("--no-workers")
    second = cluster.serve("--no-workers")
    workers = [cluster.worker("--concurrency", "4") for _ in range(2)]
    assert all(w.process is not None and w.process.poll() is None for w in workers)
    via_first = cluster.client(first, keys.owner)
    via_second = cluster.client(second, keys.owner)
    via_first.agents.create("spread", "x", model_settings=slow_settings(turns=1, delay_s=0.2))
    via_first.agents.create("ticked", "x", model_settings=slow_settings(turns=1, delay_s=0))
    via_first.agents.create("hangs", "x", model_settings=hanging_settings(60))
    via_first.agents.create("long", "x", model_settings=slow_settings(turns=6, delay_s=0.5))

    # A schedule ticking every second, seen by both nodes' schedulers. Cairn refuses such a
    # cron (a real model would bill every second), so an every-minute source is stored and
    # its cron then rewritten in the ledger: ticks to count within seconds, not minutes.
    schedule = add_schedule_source(
        ledger_app, "default", f"every-second-{uuid.uuid4().hex[:6]}", "* * * * *"
    )
    with ledger_app.store.begin() as conn:
        source_store.set_source_config(
            conn, "default", schedule.source_id, {**schedule.config, "cron": "* * * * * *"}
        )
    create_trigger(ledger_app, "default", "ticked", schedule.source_id)

    fired = [via_first.agents.fire("spread", event_payload={"n": n}).run_id for n in range(12)]
    fired += [via_second.agents.fire("spread", event_payload={"n": n}).run_id for n in range(12)]

    # Follow from the node that did not accept the run: live, while it runs elsewhere.
    slow = via_first.agents.fire("long", event_payload={"title": "followed"}).run_id
    stream = Bounded(via_second.runs.stream(slow), within_s=30)
    first_event = next(stream)
    live_status = via_second.runs.get(slow).status
    rest = list(stream)
    assert first_event.seq == 1 and rest[-1].kind == "finish"
    assert live_status in ("queued", "running"), "the first event came while the run was live"

    # Cancel through one node reaches the worker process running the run.
    hanging = via_second.agents.fire("hangs").run_id
    eventually(
        lambda: via_first.runs.get(hanging).status == "running" and via_first.runs.events(hanging),
        within_s=30,
        what="the hanging run running on a worker",
    )
    asked = time.monotonic()
    via_first.runs.cancel(hanging)
    eventually(
        lambda: via_second.runs.get(hanging).status == "cancelled",
        within_s=10,
        what="the cancel to reach the worker",
    )
    took = time.monotonic() - asked
    assert took < 2.0, f"cancel across processes took {took:.2f} s"

    rows = eventually(
        lambda: cluster.all_final(fired),
        within_s=60,
        what="every fire final",
    )
    assert {rows[i].status for i in fired} == {"succeeded"}
    assert len({rows[i].worker_id for i in fired}) == 2, "both workers took runs"

    stored, decisions = _ledger_events(cluster)
    tick_events = [row for sid, row in stored.items() if sid and sid.startswith(schedule.source_id)]
    assert len(tick_events) >= 3, "ticks came while the test ran"
    times = Counter(row.payload["scheduled_for"] for row in tick_events)
    assert set(times.values()) == {1}, "each tick fired once"
    tick_runs = [d.run_id for row in tick_events for d in decisions[row.event_id]]
    assert len(tick_runs) == len(set(tick_runs)) == len(tick_events), "one run per tick"
