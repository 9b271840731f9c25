"""Firing agents and reading the ledger over HTTP, through the SDK: synchronous test fires,
asynchronous fires (202), one-shot runs, listing with every filter, traces, events,
replay and cancel."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

import cairn
from cairn import errors
from cairn.services import runs as run_service
from tests.api.conftest import Deployment, make_app
from tests.api.helpers import (
    FINAL,
    Bounded,
    hanging_settings,
    problem_of,
    quick_settings,
    slow_settings,
)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_test_fire_answers_with_the_finished_run_and_its_trace(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings("Seen {{event.title}}"))
    run = client.agents.test(slug, event_payload={"title": "broken checkout"})
    assert run.status == "succeeded"
    assert run.kind == "test"
    assert run.trigger_id is None
    assert run.output_text == "Seen broken checkout"
    assert run.event_payload == {"title": "broken checkout"}
    assert run.outcome == "answered"
    assert run.finished_at is not None
    assert run.tokens_in > 0 and run.tokens_out > 0
    assert run.tool_resolution_trace is not None
    assert "clock_now" in run.tool_resolution_trace.tool_names_advertised

    assert client.runs.get(run.run_id) == run
    assert client.agents.runs.get_trace(slug, run.run_id) == run.tool_resolution_trace
    assert client.runs.get_trace(run.run_id) == run.tool_resolution_trace
    events = client.runs.events(run.run_id)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert events[-1].kind == "finish"
    assert "".join(e.data["delta"] for e in events if e.kind == "text") == run.output_text
    assert client.runs.events(run.run_id, after=len(events) - 1) == events[-1:]


def test_the_trace_of_a_run_is_found_only_under_its_own_agent(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings())
    client.agents.create(f"{slug}-b", "You help.", model_settings=quick_settings())
    run = client.agents.test(slug)
    with pytest.raises(errors.NotFound):
        client.agents.runs.get_trace(f"{slug}-b", run.run_id)


def test_a_viewer_may_test_fire_and_replay(deployment: Deployment, slug: str) -> None:
    deployment.client().agents.create(slug, "You help.", model_settings=quick_settings())
    viewer = deployment.client(deployment.keys.viewer)
    run = viewer.agents.test(slug, event_payload={"n": 1})
    assert run.status == "succeeded"
    assert viewer.runs.replay(run.run_id).replay_of == run.run_id


def test_an_async_fire_answers_202_with_the_run_id_before_the_run_ends(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client(deployment.keys.editor)
    client.agents.create(slug, "You help.", model_settings=slow_settings(turns=2, delay_s=0.3))
    response = deployment.http.post(
        f"/api/v1/sandboxes/default/agents/{slug}/fire",
        json={"event_payload": {"title": "async"}},
        headers=_auth(deployment.keys.editor),
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["agent_slug"] == slug
    assert accepted["status"] == "queued"
    live = client.runs.get(accepted["run_id"]).status
    assert live in ("queued", "running"), "the fire answered at once, not after the run"

    events = list(Bounded(client.runs.stream(accepted["run_id"])))
    assert events[-1].kind == "finish"
    run = client.runs.get(accepted["run_id"])
    assert run.status == "succeeded"
    assert run.kind == "manual"
    assert run.output_text == "All steps done for async."

    fired = client.agents.fire(slug, event_payload={"title": "sdk"})
    assert fired.status == "queued"
    assert [e.kind for e in Bounded(client.runs.stream(fired.run_id))][-1] == "finish"


def test_a_one_shot_run_delivers_the_prompt_as_the_event(deployment: Deployment, slug: str) -> None:
    client = deployment.client(deployment.keys.editor)
    client.agents.create(slug, "You help.", model_settings=quick_settings("You said: {{event}}"))
    run = client.runs.oneshot(slug, "what time is it?")
    assert run.kind == "oneshot"
    assert run.status == "succeeded"
    assert run.event_payload == "what time is it?"
    assert run.output_text == "You said: what time is it?"
    assert [r.run_id for r in client.agents.runs.list(slug, kind="oneshot").runs] == [run.run_id]
    with pytest.raises(errors.NotFound):
        client.runs.oneshot(f"{slug}-missing", "hello")


def test_a_replay_fires_the_same_agent_as_a_test_run_pointing_back(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings("On {{event.title}}"))
    original = client.agents.fire(slug, event_payload={"title": "first"})
    assert list(Bounded(client.runs.stream(original.run_id)))[-1].kind == "finish"

    same = client.runs.replay(original.run_id)
    assert same.replay_of == original.run_id
    assert same.kind == "test"
    assert same.event_payload == {"title": "first"}
    assert same.output_text == "On first"
    assert same.run_id != original.run_id

    edited = client.runs.replay(original.run_id, event_payload={"title": "edited"})
    assert edited.replay_of == original.run_id
    assert edited.event_payload == {"title": "edited"}
    assert edited.output_text == "On edited"
    assert client.runs.get(original.run_id).replay_of is None

    with pytest.raises(errors.NotFound):
        client.runs.replay("run_00000000000000000000000000")


@pytest.mark.anyio
async def test_the_async_client_fires_streams_replays_and_lists(
    deployment: Deployment, slug: str
) -> None:
    async with deployment.async_client() as client:
        await client.agents.create(slug, "You help.", model_settings=quick_settings("Hi {{event}}"))
        run = await client.agents.test(slug, event_payload="there")
        assert run.output_text == "Hi there"
        fired = await client.agents.fire(slug, event_payload="again")
        with anyio.fail_after(10):
            kinds = [event.kind async for event in client.runs.stream(fired.run_id)]
        assert kinds[-1] == "finish"
        replayed = await client.runs.replay(run.run_id, event_payload="edited")
        assert (replayed.replay_of, replayed.output_text) == (run.run_id, "Hi edited")
        page = await client.agents.runs.list(slug, limit=2, kind="test")
        assert [r.run_id for r in page.runs] == [replayed.run_id, run.run_id]
        trace = await client.agents.runs.get_trace(slug, run.run_id)
        assert trace == run.tool_resolution_trace
        assert (await client.runs.get(fired.run_id)).status == "succeeded"


def _fire_from_a_trigger(deployment: Deployment, slug: str, trigger_id: str) -> str:
    """A trigger-kind run through the run service in another process's place (a second App
    over the same ledger), as the trigger machinery fires it."""
    app = make_app(deployment.database_url, deployment.home)
    try:
        run = anyio.run(
            lambda: run_service.fire_agent(
                app, "default", slug, {"from": trigger_id}, kind="trigger", trigger_id=trigger_id
            )
        )
    finally:
        app.close()
    assert run.status == "succeeded"
    return run.run_id


def test_listing_filters_by_status_kind_trigger_window_and_pages_with_a_cursor(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings())
    ok_test = client.agents.test(slug, event_payload={"n": 1}).run_id
    manual = client.agents.fire(slug, event_payload={"n": 2}).run_id
    assert list(Bounded(client.runs.stream(manual)))[-1].kind == "finish"
    oneshot = client.runs.oneshot(slug, "hi").run_id
    triggered_a = _fire_from_a_trigger(deployment, slug, "trg_alpha")
    triggered_b = _fire_from_a_trigger(deployment, slug, "trg_beta")
    client.agents.update(slug, model_settings={"script": {"turns": [{"error": "model down"}]}})
    failed = client.agents.test(slug).run_id
    assert client.runs.get(failed).status == "failed"
    newest_first = [failed, triggered_b, triggered_a, oneshot, manual, ok_test]

    def ids(page: cairn.wire.RunPage) -> list[str]:
        return [run.run_id for run in page.runs]

    runs = client.agents.runs
    assert ids(runs.list(slug, limit=50)) == newest_first
    assert ids(runs.list(slug, status="failed")) == [failed]
    assert ids(runs.list(slug, status="succeeded")) == newest_first[1:]
    assert ids(runs.list(slug, status="running")) == []
    assert ids(runs.list(slug, trigger_id="trg_alpha")) == [triggered_a]
    assert ids(runs.list(slug, trigger_id="trg_beta")) == [triggered_b]
    assert ids(runs.list(slug, trigger_id="trg_none")) == []
    assert ids(runs.list(slug, kind="trigger")) == [triggered_b, triggered_a]
    assert ids(runs.list(slug, kind="manual")) == [manual]
    assert ids(runs.list(slug, kind="test")) == [failed, ok_test]
    assert ids(runs.list(slug, kind="oneshot")) == [oneshot]
    assert ids(runs.list(slug, since="1h")) == newest_first
    assert ids(runs.list(slug, kind="test", status="succeeded")) == [ok_test]

    first = runs.list(slug, limit=4)
    assert ids(first) == newest_first[:4]
    assert first.next_before == newest_first[3]
    second = runs.list(slug, limit=4, before=first.next_before)
    assert ids(second) == newest_first[4:]
    assert second.next_before is None

    across = client.runs.list(agent=slug, limit=3, kind="trigger")
    assert ids(across) == [triggered_b, triggered_a]
    everywhere = ids(client.runs.list(limit=1000))
    assert set(newest_first) <= set(everywhere)


def test_cancel_stops_a_live_run_within_a_second_and_keeps_its_events(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client(deployment.keys.editor)
    client.agents.create(slug, "You help.", model_settings=hanging_settings(30))
    fired = client.agents.fire(slug)
    stream = Bounded(client.runs.stream(fired.run_id))
    seen = []
    for event in stream:
        seen.append(event)
        if event.kind == "tool_result":
            break  # the run is now waiting in its second model turn
    asked = time.monotonic()
    answer = client.runs.cancel(fired.run_id)
    assert answer.run_id == fired.run_id
    seen.extend(stream)
    stopped_in = time.monotonic() - asked
    assert stopped_in < 1.0, f"the run took {stopped_in:.2f} s to stop"

    run = client.runs.get(fired.run_id)
    assert run.status == "cancelled"
    assert run.error_type == "cancelled"
    assert run.finished_at is not None
    assert [e.kind for e in seen] == ["text", "tool_call", "tool_result", "error"]
    assert seen[-1].data["error_type"] == "cancelled"
    assert client.runs.events(fired.run_id) == seen, "the run kept every event it had"
    assert [c.name for c in run.tool_calls] == ["clock_now"]

    with pytest.raises(errors.Conflict, match="already finished"):
        client.runs.cancel(fired.run_id)
    response = deployment.http.post(
        f"/api/v1/sandboxes/default/runs/{fired.run_id}/cancel",
        headers=_auth(deployment.keys.owner),
    )
    assert response.status_code == 409
    assert "cancelled" in problem_of(response)["detail"]


def test_a_viewer_cannot_cancel_and_the_run_goes_on(deployment: Deployment, slug: str) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=slow_settings(turns=2, delay_s=0.2))
    fired = client.agents.fire(slug)
    with pytest.raises(errors.Forbidden):
        deployment.client(deployment.keys.viewer).runs.cancel(fired.run_id)
    assert list(Bounded(client.runs.stream(fired.run_id)))[-1].kind == "finish"
    assert client.runs.get(fired.run_id).status == "succeeded"


def test_unknown_runs_are_404_problems(deployment: Deployment) -> None:
    client = deployment.client()
    missing = "run_00000000000000000000000000"
    for call in (
        lambda: client.runs.get(missing),
        lambda: client.runs.get_trace(missing),
        lambda: client.runs.events(missing),
        lambda: client.runs.cancel(missing),
        lambda: list(Bounded(client.runs.stream(missing))),
    ):
        with pytest.raises(errors.NotFound, match=missing):
            call()


def test_every_fire_leaves_a_final_row(deployment: Deployment, slug: str) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings())
    ids = [client.agents.fire(slug, event_payload={"n": n}).run_id for n in range(5)]
    for run_id in ids:
        assert list(Bounded(client.runs.stream(run_id)))[-1].kind == "finish"
    statuses: dict[str, Any] = {r.run_id: r.status for r in client.agents.runs.list(slug).runs}
    assert statuses == dict.fromkeys(ids, "succeeded")
    assert all(status in FINAL for status in statuses.values())


def test_a_run_whose_text_the_ledger_refuses_still_ends_and_the_server_keeps_firing(
    deployment: Deployment, slug: str
) -> None:
    """PostgreSQL cannot store a NUL character in text: the run's answer echoes one."""
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings("Echo: {{event.text}}"))
    odd = client.agents.test(slug, event_payload={"text": "nul \x00 here"})
    stored = client.runs.get(odd.run_id)
    assert stored.status in FINAL, "the row is final, whatever the database refused"
    assert stored.event_payload == {"text": "nul \x00 here"}
    assert list(Bounded(client.runs.stream(odd.run_id)))[-1].kind in ("finish", "error")
    after = client.agents.test(slug, event_payload={"text": "fine"})
    assert after.status == "succeeded", "one odd run does not take the workers down"
    assert after.output_text == "Echo: fine"


def test_a_run_whose_final_write_fails_ends_failed_and_the_workers_go_on(
    deployment: Deployment, slug: str
) -> None:
    """A script can claim more tokens than the ledger's integer columns hold: the final
    write raises, the worker survives it and still ends the row."""
    client = deployment.client()
    huge = {"turns": [{"text": "Counted.", "usage": {"tokens_in": 10**30}}]}
    client.agents.create(slug, "You help.", model_settings={"script": huge})
    fired = client.agents.fire(slug)
    events = list(Bounded(client.runs.stream(fired.run_id)))  # ends: followers are released
    run = client.runs.get(fired.run_id)
    assert run.status == "failed"
    assert run.error_type == "internal_error"
    assert run.error_message is not None and "could not be completed" in run.error_message
    assert [e.kind for e in events] == [e.kind for e in client.runs.events(fired.run_id)]
    client.agents.update(slug, model_settings={"script": {"turns": [{"text": "Fine."}]}})
    assert client.agents.test(slug).output_text == "Fine.", "the workers are still there"
