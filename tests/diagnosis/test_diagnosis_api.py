"""The explain and doctor routes over HTTP in-process (``httpx.ASGITransport``, with the
server's lifespan), and the SDK methods over the in-process transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import httpx
import pytest

from cairn.api.app import create_app
from cairn.client import Client
from cairn.client.local import LocalTransport
from cairn.services.access import create_key, create_sandbox
from cairn.services.app import App
from cairn.services.ingest import ingest
from cairn.services.triggers import create_trigger
from cairn.services.webhooks import add_webhook_source
from cairn.wire.diagnosis import DoctorReport, Explanation
from tests.diagnosis.helpers import SANDBOX, fire, make_agent

BASE = "/api/v1/sandboxes/default"


@dataclass
class Api:
    http: httpx.AsyncClient
    viewer: dict[str, str]
    other: dict[str, str]


@pytest.fixture
async def api(app: App) -> AsyncIterator[Api]:
    create_sandbox(app, "other")
    viewer = create_key(app, "default", "viewer", "viewer")[1]
    other = create_key(app, "other", "owner", "owner")[1]
    served = create_app(app, run_schedules=False)
    transport = httpx.ASGITransport(app=served)
    async with (
        served.router.lifespan_context(served),
        httpx.AsyncClient(transport=transport, base_url="http://cairn.test") as http,
    ):
        yield Api(http, {"Authorization": f"Bearer {viewer}"}, {"Authorization": f"Bearer {other}"})


@pytest.mark.anyio
async def test_a_viewer_explains_a_run_an_event_and_an_agent_over_http(api: Api, app: App) -> None:
    await make_agent(app, [{"text": ""}], slug="triage")
    run = await fire(app, "triage")
    answer = await api.http.get(f"{BASE}/runs/{run.run_id}/explain", headers=api.viewer)
    assert answer.status_code == 200
    explained = Explanation.model_validate(answer.json())
    assert explained.findings[0].code == "model_chose_no_tool"
    assert explained.findings[0].evidence["stop_reason"] == "end_turn"

    source = add_webhook_source(app, SANDBOX, "github").source
    create_trigger(app, SANDBOX, "triage", "github", event_type_filter="issue.opened")
    event = await ingest(app, source, "issue.closed", {})
    answer = await api.http.get(f"{BASE}/events/{event.event_id}/explain", headers=api.viewer)
    assert answer.status_code == 200
    assert answer.json()["findings"][0]["code"] == "filtered_out"
    answer = await api.http.get(f"{BASE}/agents/triage/why-not-fired", headers=api.viewer)
    assert answer.status_code == 200
    assert answer.json()["kind"] == "agent"


@pytest.mark.anyio
async def test_doctor_over_http_takes_agent_and_quiet_days(api: Api, app: App) -> None:
    await make_agent(app, "hi", slug="support", tool_allowlist=["clok_now"])
    answer = await api.http.get(
        f"{BASE}/doctor", params={"agent": "support", "quiet_days": 3}, headers=api.viewer
    )
    assert answer.status_code == 200
    report = DoctorReport.model_validate(answer.json())
    assert not report.ok
    assert [(f.code, f.subject) for f in report.findings] == [("stale_allowlist", "support")]
    for days in ("-1", "1e40", "abc"):
        bad = await api.http.get(f"{BASE}/doctor", params={"quiet_days": days}, headers=api.viewer)
        assert bad.status_code == 422, days


@pytest.mark.anyio
async def test_unknown_ids_and_other_sandboxes_get_problems(api: Api, app: App) -> None:
    await make_agent(app, "hi")
    run = await fire(app)
    missing = await api.http.get(f"{BASE}/runs/run_nope/explain", headers=api.viewer)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["error"] == "NotFound"
    elsewhere = await api.http.get(f"{BASE}/runs/{run.run_id}/explain", headers=api.other)
    assert elsewhere.status_code in (403, 404)
    listed = (await api.http.get("/openapi.json")).json()["paths"]
    for path in (
        "/runs/{run_id}/explain",
        "/events/{event_id}/explain",
        "/agents/{slug}/why-not-fired",
        "/doctor",
    ):
        assert f"/api/v1/sandboxes/{{sandbox}}{path}" in listed


def test_the_sdk_explains_and_runs_the_doctor_in_process(app: App) -> None:
    anyio.run(lambda: make_agent(app, [{"text": ""}], slug="support"))
    run = anyio.run(lambda: fire(app))
    client = Client(transport=LocalTransport(app))
    explained = client.runs.explain(run.run_id)
    assert explained.subject == run.run_id
    assert explained.findings[0].code == "model_chose_no_tool"
    assert client.agents.why_not_fired("support").findings[0].code == "no_trigger"
    report = client.doctor(quiet_days=1)
    assert report.ok
    assert report.checked["agents"] == 1
    source = add_webhook_source(app, SANDBOX, "alerts").source
    event = anyio.run(lambda: ingest(app, source, "alert.fired", {}))
    assert client.explain_event(event.event_id).findings[0].code == "no_trigger"
