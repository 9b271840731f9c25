"""Signed events posted to a real server: what fires, what does not, and why."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from cairn.services.app import App
from cairn.services.sources import revoke_source
from cairn.services.webhooks import MAX_BODY_BYTES, rotate_secret, sign
from cairn.store import open_store
from tests.triggers.conftest import Server

SCRIPT = {"turns": [{"text": "Triaging {{event.title}}"}]}


def setup(server: Server, **trigger: Any) -> tuple[str, str, str]:
    """An agent ``triage``, a webhook source and a trigger; returns (url, secret, trigger_id)."""
    with server.api() as api:
        made = api.post(
            "/agents",
            json={
                "slug": "triage",
                "system_prompt": "t",
                "tool_sources": [],
                "model_settings": {"script": SCRIPT},
            },
        )
        assert made.status_code == 201, made.text
        hook = api.post("/sources/webhooks", json={"label": "gh"}).json()
        body = {"data_source_id": "gh", "event_type_filter": "issue.opened", **trigger}
        created = api.post("/agents/triage/triggers", json=body)
        assert created.status_code == 201, created.text
    return server.url + hook["path"], hook["signing_secret"], created.json()["trigger_id"]


def post(
    url: str,
    secret: str,
    event: dict[str, Any] | bytes,
    *,
    timestamp: int | None = None,
    signature: str | None = None,
) -> httpx.Response:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    ts = str(timestamp if timestamp is not None else int(time.time()))
    headers = {
        "X-Cairn-Timestamp": ts,
        "X-Cairn-Signature": signature or sign(secret, ts, body),
        "Content-Type": "application/json",
    }
    return httpx.post(url, content=body, headers=headers, timeout=30)


def wait_for_runs(server: Server, trigger_id: str, count: int) -> list[dict[str, Any]]:
    """The trigger's runs once ``count`` of them are final (bounded)."""
    deadline = time.monotonic() + 20
    with server.api() as api:
        while True:
            page = api.get("/agents/triage/runs", params={"trigger_id": trigger_id, "limit": 500})
            runs: list[dict[str, Any]] = page.json()["runs"]
            final = [r for r in runs if r["status"] in ("succeeded", "failed", "cancelled")]
            if len(final) >= count or time.monotonic() > deadline:
                return runs
            time.sleep(0.05)


def test_a_matching_event_fires_a_run_with_the_trigger_id(server: Server) -> None:
    url, secret, trigger_id = setup(server, filter_config={"labels": "bug"})
    answer = post(
        url,
        secret,
        {
            "type": "issue.opened",
            "id": "d-1",
            "payload": {"title": "broken checkout", "labels": ["bug"]},
        },
    )
    assert answer.status_code == 202, answer.text
    (decision,) = answer.json()["decisions"]
    assert decision["decision"] == "fired" and decision["trigger_id"] == trigger_id
    (run,) = wait_for_runs(server, trigger_id, 1)
    assert run["run_id"] == decision["run_id"]
    assert (run["kind"], run["trigger_id"], run["status"]) == ("trigger", trigger_id, "succeeded")
    assert run["output_text"] == "Triaging broken checkout"
    assert run["event_payload"] == {"title": "broken checkout", "labels": ["bug"]}
    with server.api() as api:
        trigger = api.get(f"/triggers/{trigger_id}").json()
    assert trigger["fire_count"] == 1 and trigger["last_fired_at"] is not None


def test_non_matching_events_record_which_filter_and_why(server: Server) -> None:
    url, secret, _ = setup(server, filter_config={"labels": "bug", "repo.name": ["web"]})
    wrong_type = post(url, secret, {"type": "issue.closed", "payload": {"labels": ["bug"]}})
    wrong_label = post(
        url,
        secret,
        {"type": "issue.opened", "payload": {"labels": ["docs"], "repo": {"name": "web"}}},
    )
    no_repo = post(url, secret, {"type": "issue.opened", "payload": {"labels": ["bug"]}})
    details = [r.json()["decisions"][0] for r in (wrong_type, wrong_label, no_repo)]
    assert [d["decision"] for d in details] == ["filtered_out"] * 3
    assert details[0]["detail"] == {
        "filter": "event_type_filter",
        "expected": "issue.opened",
        "actual": "issue.closed",
    }
    assert details[1]["detail"]["field"] == "labels"
    assert details[1]["detail"]["actual"] == ["docs"]
    assert details[2]["detail"]["field"] == "repo.name" and details[2]["detail"]["missing"]
    with server.api() as api:
        event = api.get(f"/events/{wrong_label.json()['event_id']}").json()
        assert event["decisions"][0]["decision"] == "filtered_out"
        assert api.get("/agents/triage/runs").json()["runs"] == []


@pytest.mark.parametrize(
    ("tamper", "status", "reason"),
    [
        ("bad_signature", 401, "bad signature"),
        ("stale", 401, "stale delivery"),
        ("no_signature", 401, "missing X-Cairn-Timestamp"),
        ("too_large", 413, "byte limit"),
        ("malformed", 400, "malformed JSON"),
        ("no_type", 400, '"type"'),
    ],
)
def test_refused_deliveries_get_a_clear_4xx_are_recorded_and_fire_nothing(
    server: Server, tamper: str, status: int, reason: str
) -> None:
    url, secret, trigger_id = setup(server)
    event: dict[str, Any] | bytes = {"type": "issue.opened", "payload": {"title": "x"}}
    if tamper == "bad_signature":
        answer = post(url, secret, event, signature="v1=" + "0" * 64)
    elif tamper == "stale":
        answer = post(url, secret, event, timestamp=int(time.time()) - 3600)
    elif tamper == "no_signature":
        answer = httpx.post(url, json=event, timeout=30)
    elif tamper == "too_large":
        big = {"type": "issue.opened", "payload": {"blob": "x" * (MAX_BODY_BYTES + 10)}}
        answer = post(url, secret, big)
    elif tamper == "malformed":
        answer = post(url, secret, b"{not json")
    else:
        answer = post(url, secret, {"payload": {}})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert reason in answer.json()["detail"]
    with server.api() as api:
        (recorded,) = api.get("/events").json()["events"]
        assert recorded["status"] == "rejected" and reason in recorded["reject_reason"]
        assert api.get("/agents/triage/runs").json()["runs"] == []
        assert api.get(f"/triggers/{trigger_id}").json()["fire_count"] == 0


def test_the_same_sender_event_id_posted_five_times_fires_once(server: Server) -> None:
    url, secret, trigger_id = setup(server)
    event = {"type": "issue.opened", "id": "gh-delivery-42", "payload": {"title": "dup"}}
    answers = [post(url, secret, event) for _ in range(5)]
    assert [a.status_code for a in answers] == [202, 200, 200, 200, 200]
    assert {a.json()["event_id"] for a in answers} == {answers[0].json()["event_id"]}
    assert all(a.json()["duplicate"] for a in answers[1:])
    runs = wait_for_runs(server, trigger_id, 1)
    assert len(runs) == 1


def test_a_rate_limit_holds_under_concurrency(server: Server) -> None:
    url, secret, trigger_id = setup(server, rate_limit_per_hour=10)

    def send(index: int) -> httpx.Response:
        return post(
            url,
            secret,
            {"type": "issue.opened", "id": f"c-{index}", "payload": {"title": f"t{index}"}},
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(send, range(100)))
    assert all(a.status_code == 202 for a in answers), {a.status_code for a in answers}
    decisions = [a.json()["decisions"][0]["decision"] for a in answers]
    assert decisions.count("fired") == 10
    assert decisions.count("rate_limited") == 90
    runs = wait_for_runs(server, trigger_id, 10)
    assert len(runs) == 10
    limited = next(a for a in answers if a.json()["decisions"][0]["decision"] == "rate_limited")
    detail = limited.json()["decisions"][0]["detail"]
    assert detail["rate_limit_per_hour"] == 10 and detail["fires_in_window"] == 10


def test_pause_stops_fires_resume_restores_and_an_archived_agent_is_recorded(
    server: Server,
) -> None:
    url, secret, trigger_id = setup(server)
    with server.api() as api:
        paused = api.patch(f"/triggers/{trigger_id}", json={"status": "paused"})
        assert paused.json()["status"] == "paused"
        first = post(url, secret, {"type": "issue.opened", "payload": {"n": 1}})
        assert first.json()["decisions"][0]["decision"] == "paused"
        api.patch(f"/triggers/{trigger_id}", json={"status": "active"})
        second = post(url, secret, {"type": "issue.opened", "payload": {"n": 2}})
        assert second.json()["decisions"][0]["decision"] == "fired"
        api.post("/agents/triage/archive")
        third = post(url, secret, {"type": "issue.opened", "payload": {"n": 3}})
        assert third.json()["decisions"][0]["decision"] == "agent_archived"
    runs = wait_for_runs(server, trigger_id, 1)
    assert len(runs) == 1


def test_an_unknown_source_is_a_404_and_no_trigger_means_no_decision(server: Server) -> None:
    answer = httpx.post(f"{server.url}/hooks/src_nothing", json={"type": "x"}, timeout=30)
    assert answer.status_code == 404
    with server.api() as api:
        hook = api.post("/sources/webhooks", json={"label": "lonely"}).json()
    lonely = post(server.url + hook["path"], hook["signing_secret"], {"type": "x.y"})
    assert lonely.status_code == 202 and lonely.json()["decisions"] == []


def test_a_source_rotated_or_revoked_elsewhere_is_never_used_with_its_old_secret(
    server: Server,
) -> None:
    url, secret, trigger_id = setup(server)
    first = post(url, secret, {"type": "issue.opened", "id": "n1", "payload": {"n": 1}})
    assert first.status_code == 202, first.text  # the server has the source cached now
    other = App(server.app.settings, open_store(server.app.settings.database_url))
    try:
        rotated = rotate_secret(other, "default", "gh", overlap=timedelta(0))
        assert rotated.secret is not None
        old = post(url, secret, {"type": "issue.opened", "id": "n2", "payload": {"n": 2}})
        new = post(url, rotated.secret, {"type": "issue.opened", "id": "n3", "payload": {"n": 3}})
        revoke_source(other, "default", "gh")
        gone = post(url, rotated.secret, {"type": "issue.opened", "id": "n4", "payload": {"n": 4}})
    finally:
        other.close()

    assert old.status_code == 401 and "signature" in old.json()["detail"], old.text
    assert new.status_code == 202, new.text
    assert [d["decision"] for d in new.json()["decisions"]] == ["fired"]
    assert gone.status_code == 404, gone.text
    with server.api() as api:
        events = api.get("/events", params={"limit": 50}).json()["events"]
    accepted = sorted(e["sender_event_id"] for e in events if e["status"] == "accepted")
    assert accepted == ["n1", "n3"]
    assert len(wait_for_runs(server, trigger_id, 2)) == 2


def test_concurrent_deliveries_are_each_stored_decided_and_answered_once(server: Server) -> None:
    url, secret, trigger_id = setup(server)

    def send(index: int) -> httpx.Response:  # 40 distinct events, each sent twice
        event = {"type": "issue.opened", "id": f"e-{index % 40}", "payload": {"n": index}}
        return post(url, secret, event)

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(send, range(80)))

    assert sorted(a.status_code for a in answers) == [200] * 40 + [202] * 40
    by_sender: dict[str, set[str]] = {}
    for index, answer in enumerate(answers):
        by_sender.setdefault(f"e-{index % 40}", set()).add(answer.json()["event_id"])
    assert all(len(ids) == 1 for ids in by_sender.values()), "a repeat names the first event"
    fired = [a for a in answers if a.status_code == 202]
    assert all([d["decision"] for d in a.json()["decisions"]] == ["fired"] for a in fired)
    assert len(wait_for_runs(server, trigger_id, 40)) == 40
