"""Cost-watch over HTTP, in-process (``httpx.ASGITransport``): shapes, roles, problems and
tenancy; and the SDK's ``client.usage`` over the in-process transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

import cairn
from cairn.api.app import create_app
from cairn.client.local import LocalTransport
from cairn.services.access import create_key, create_sandbox
from cairn.services.app import App
from tests.usage.helpers import deliver, fire, hook, make_agent

BASE = "/api/v1/sandboxes/default"


@dataclass
class Api:
    http: httpx.AsyncClient
    owner: dict[str, str]
    editor: dict[str, str]
    viewer: dict[str, str]
    other_owner: dict[str, str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(app: App) -> AsyncIterator[Api]:
    create_sandbox(app, "other")
    keys = {
        role: create_key(app, "default", role, role)[1] for role in ("owner", "editor", "viewer")
    }
    other = create_key(app, "other", "owner", "owner")[1]
    served = create_app(app)
    async with (
        served.router.lifespan_context(served),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served), base_url="http://cairn.test"
        ) as http,
    ):
        yield Api(
            http,
            bearer(keys["owner"]),
            bearer(keys["editor"]),
            bearer(keys["viewer"]),
            bearer(other),
        )


@pytest.mark.anyio
async def test_a_viewer_reads_usage_by_each_grouping(app: App, api: Api) -> None:
    await make_agent(app, "support", tokens_in=100, tokens_out=20)
    await fire(app, "support", 2)

    by_agent = await api.http.get(f"{BASE}/usage", headers=api.viewer)
    by_hour = await api.http.get(
        f"{BASE}/usage", params={"since": "6h", "by": "hour"}, headers=api.viewer
    )

    assert by_agent.status_code == 200, by_agent.text
    report = by_agent.json()
    assert report["by"] == "agent" and report["bucket_s"] == 3600.0
    assert [(r["key"], r["runs"], r["tokens"], r["cost_micros"]) for r in report["rows"]] == [
        ("support", 2, 240, 800)
    ]
    # Six hours ending now touch seven clock hours (the first and last partial).
    assert len(by_hour.json()["rows"]) == 7 and by_hour.json()["totals"]["runs"] == 2


@pytest.mark.anyio
async def test_bad_usage_parameters_are_problems(api: Api) -> None:
    bad_since = await api.http.get(f"{BASE}/usage?since=soon", headers=api.viewer)
    bad_by = await api.http.get(f"{BASE}/usage?by=week", headers=api.viewer)
    no_agent = await api.http.get(f"{BASE}/usage?agent=nobody", headers=api.viewer)
    elsewhere = await api.http.get(f"{BASE}/usage", headers=api.other_owner)

    assert (bad_since.status_code, bad_since.json()["error"]) == (400, "InvalidDuration")
    assert bad_since.headers["content-type"] == "application/problem+json"
    assert (bad_by.status_code, bad_by.json()["error"]) == (400, "UsageError")
    assert "use one of agent, trigger, model, hour" in bad_by.json()["detail"]
    assert no_agent.status_code == 404
    assert elsewhere.status_code == 404


@pytest.mark.anyio
async def test_editors_set_thresholds_and_enforce_viewers_only_read(app: App, api: Api) -> None:
    await make_agent(app, "support", tokens_in=100, tokens_out=20)
    github = hook(app, "support", "github")
    await deliver(app, github.source, 3)
    path = f"{BASE}/agents/support/threshold"
    body = {"tokens_per_hour": 300, "pause_triggers": True}

    as_viewer = await api.http.put(path, json=body, headers=api.viewer)
    as_editor = await api.http.put(path, json=body, headers=api.editor)
    empty = await api.http.put(path, json={}, headers=api.editor)
    typo = await api.http.put(path, json={"tokens_per_hr": 5}, headers=api.editor)
    huge = await api.http.put(path, json={"tokens_per_hour": 10**30}, headers=api.editor)
    shown = await api.http.get(path, headers=api.viewer)
    listed = await api.http.get(f"{BASE}/thresholds", headers=api.viewer)
    flags = await api.http.get(f"{BASE}/runaways", headers=api.viewer)
    viewer_enforce = await api.http.post(f"{BASE}/runaways/enforce", headers=api.viewer)
    enforced = await api.http.post(f"{BASE}/runaways/enforce", headers=api.editor)
    records = await api.http.get(f"{BASE}/enforcements?agent=support", headers=api.viewer)

    assert as_viewer.status_code == 403
    assert as_editor.status_code == 200, as_editor.text
    assert as_editor.json()["tokens_per_hour"] == 300 and as_editor.json()["pause_triggers"]
    assert empty.status_code == 400 and "needs tokens per hour" in empty.json()["detail"]
    assert typo.status_code == 422 and huge.status_code == 422
    assert shown.json() == as_editor.json()
    assert [t["agent_slug"] for t in listed.json()] == ["support"]
    assert [(f["slug"], f["value"], f["paused_trigger_ids"]) for f in flags.json()] == [
        ("support", 360, [])
    ]
    assert viewer_enforce.status_code == 403
    assert [f["paused_trigger_ids"] for f in enforced.json()] == [[github.trigger.trigger_id]]
    [record] = records.json()
    assert record["trigger_ids"] == [github.trigger.trigger_id]
    assert "360 tokens" in record["reason"]
    cleared = await api.http.delete(path, headers=api.editor)
    assert cleared.json() == {"agent_slug": "support", "cleared": True}
    assert (await api.http.get(path, headers=api.viewer)).json() is None


@pytest.mark.anyio
async def test_the_openapi_document_describes_the_usage_routes(api: Api) -> None:
    document = (await api.http.get("/openapi.json")).json()

    paths = document["paths"]
    assert set(paths[f"{BASE.replace('default', '{sandbox}')}/usage"]["get"]["responses"]) >= {
        "200",
        "400",
        "401",
    }
    assert "put" in paths["/api/v1/sandboxes/{sandbox}/agents/{slug}/threshold"]


@pytest.mark.anyio
async def test_the_sdk_reads_usage_and_manages_thresholds_in_process(app: App) -> None:
    await make_agent(app, "support", tokens_in=100, tokens_out=20)
    await fire(app, "support", 3)
    client = cairn.Client(transport=LocalTransport(app))

    report = client.usage(since="2h", by="agent")
    threshold = client.usage.set_threshold("support", cost_micros_per_hour=1000)
    flags = client.usage.runaways()

    assert [(r.key, r.runs, r.cost_micros, r.series) for r in report.rows] == [
        ("support", 3, 1200, [0, 0, 360])
    ]
    assert threshold.cost_micros_per_hour == 1000
    assert client.usage.get_threshold("support") == threshold
    assert [(f.slug, f.metric, f.value) for f in flags] == [
        ("support", "cost_micros_per_hour", 1200)
    ]
    assert client.usage.enforce() == []  # a flag-only threshold pauses nothing
    assert client.usage.enforcements() == []
    assert client.usage.clear_threshold("support").cleared is True
    assert [t.agent_slug for t in client.usage.thresholds()] == []
