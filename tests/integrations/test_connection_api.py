"""The connection routes over HTTP, in-process (``httpx.ASGITransport``): roles, shapes,
problems, and tokens that go in but never come out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from cairn.api.app import create_app
from cairn.services.access import create_key, create_sandbox
from cairn.services.app import App

BASE = "/api/v1/sandboxes/default"
TOKEN = "xoxb-do-not-print-7c1e"


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
    transport = httpx.ASGITransport(app=served)
    async with (  # the lifespan starts and stops the worker pool, as uvicorn would
        served.router.lifespan_context(served),
        httpx.AsyncClient(transport=transport, base_url="http://cairn.test") as http,
    ):
        yield Api(
            http,
            bearer(keys["owner"]),
            bearer(keys["editor"]),
            bearer(keys["viewer"]),
            bearer(other),
        )


@pytest.mark.anyio
async def test_an_editor_adds_a_connection_and_the_token_is_never_returned(api: Api) -> None:
    added = await api.http.post(
        f"{BASE}/connections",
        json={"app_slug": "slack", "access_token": TOKEN, "expires_in_s": 600},
        headers=api.editor,
    )
    listed = await api.http.get(f"{BASE}/connections", headers=api.viewer)

    assert added.status_code == 201, added.text
    made = added.json()
    assert made["app_slug"] == "slack" and made["status"] == "active"
    assert made["expires_at"] is not None and made["expired"] is False
    assert [c["connection_id"] for c in listed.json()] == [made["connection_id"]]
    assert TOKEN not in added.text + listed.text
    assert "access_token" not in added.text + listed.text


@pytest.mark.anyio
async def test_a_viewer_cannot_add_and_an_editor_cannot_revoke(api: Api) -> None:
    body = {"app_slug": "slack", "access_token": TOKEN}
    as_viewer = await api.http.post(f"{BASE}/connections", json=body, headers=api.viewer)
    await api.http.post(f"{BASE}/connections", json=body, headers=api.editor)
    as_editor = await api.http.post(f"{BASE}/connections/slack/revoke", headers=api.editor)
    as_owner = await api.http.post(f"{BASE}/connections/slack/revoke", headers=api.owner)

    assert as_viewer.status_code == 403
    assert as_viewer.headers["content-type"].startswith("application/problem+json")
    assert as_editor.status_code == 403
    assert "owner" in as_editor.json()["detail"]
    assert as_owner.status_code == 200
    assert as_owner.json()["status"] == "revoked"


@pytest.mark.anyio
async def test_another_sandboxs_key_sees_nothing(api: Api) -> None:
    await api.http.post(
        f"{BASE}/connections",
        json={"app_slug": "slack", "access_token": TOKEN},
        headers=api.owner,
    )

    listed = await api.http.get(f"{BASE}/connections", headers=api.other_owner)
    theirs = await api.http.get("/api/v1/sandboxes/other/connections", headers=api.other_owner)

    assert listed.status_code == 404
    assert theirs.json() == []


@pytest.mark.anyio
async def test_bad_connection_bodies_are_problems(api: Api) -> None:
    unknown_field = await api.http.post(
        f"{BASE}/connections",
        json={"app_slug": "slack", "access_token": TOKEN, "scope": "all"},
        headers=api.owner,
    )
    bad_slug = await api.http.post(
        f"{BASE}/connections",
        json={"app_slug": "Not A Slug", "access_token": TOKEN},
        headers=api.owner,
    )
    unknown = await api.http.post(f"{BASE}/connections/conn_nope/revoke", headers=api.owner)
    forever = await api.http.post(
        f"{BASE}/connections",
        json={"app_slug": "slack", "access_token": TOKEN, "expires_in_s": 10**18},
        headers=api.owner,
    )
    long_label = await api.http.post(
        f"{BASE}/sources/integrations",
        json={"app_slug": "slack", "label": "x" * 201, "provider_url": "http://127.0.0.1:1"},
        headers=api.owner,
    )

    assert unknown_field.status_code == 422
    assert TOKEN not in unknown_field.text
    assert bad_slug.status_code == 400 and "Not A Slug" in bad_slug.json()["detail"]
    assert unknown.status_code == 404
    assert forever.status_code == 422 and "expires_in_s" in forever.json()["detail"]
    assert long_label.status_code == 400


@pytest.mark.anyio
async def test_an_editor_adds_an_integration_source(api: Api) -> None:
    body = {"app_slug": "github", "provider_url": "http://127.0.0.1:8123/mcp"}
    added = await api.http.post(f"{BASE}/sources/integrations", json=body, headers=api.editor)
    again = await api.http.post(f"{BASE}/sources/integrations", json=body, headers=api.editor)
    as_viewer = await api.http.post(f"{BASE}/sources/integrations", json=body, headers=api.viewer)
    listed = await api.http.get(f"{BASE}/sources", headers=api.viewer)

    assert added.status_code == 201, added.text
    made = added.json()
    assert (made["kind"], made["label"], made["status"]) == ("integration", "github", "active")
    assert made["config"]["namespace"] == "pd_github"
    assert again.status_code == 409
    assert as_viewer.status_code == 403
    assert made["source_id"] in [s["source_id"] for s in listed.json()]


@pytest.mark.anyio
async def test_the_openapi_document_describes_the_connection_routes(api: Api) -> None:
    document = (await api.http.get("/openapi.json")).json()

    paths = document["paths"]
    assert set(paths[f"{BASE}/connections".replace("default", "{sandbox}")]) == {"get", "post"}
    assert "post" in paths["/api/v1/sandboxes/{sandbox}/connections/{ref}/revoke"]
    assert "post" in paths["/api/v1/sandboxes/{sandbox}/sources/integrations"]


@pytest.mark.anyio
async def test_another_sandboxs_key_gets_404_even_with_a_bad_body(api: Api) -> None:
    for path in ("/connections", "/connections/slack/revoke", "/sources/integrations"):
        response = await api.http.post(f"{BASE}{path}", json={}, headers=api.other_owner)
        assert response.status_code == 404, (path, response.text)
