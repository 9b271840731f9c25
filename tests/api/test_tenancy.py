"""Sandboxes and API keys over HTTP: every call is authenticated and scoped to the key's
sandbox; another sandbox's agents, runs, sources, keys and streams answer 404; a revoked
key answers 401; keys are shown once and stored hashed; no response, event or problem body
carries a source's secret."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cairn import errors
from cairn.store.schema import api_keys, sources
from tests.api.conftest import OTHER, Deployment
from tests.api.helpers import Bounded, bind_loopback, problem_of, quick_settings, sse_frames
from tests.mcp_servers import HttpServer, serve_http

TOKEN = f"mcp-bearer-{uuid.uuid4().hex}"
DEAD_TOKEN = f"mcp-dead-{uuid.uuid4().hex}"
ENV_SECRET = f"env-secret-{uuid.uuid4().hex}"
SECRETS = (TOKEN, DEAD_TOKEN, ENV_SECRET)


@pytest.fixture(scope="module")
def orders_mcp() -> Iterator[HttpServer]:
    """A real MCP server over streamable HTTP that insists on ``Bearer TOKEN``."""
    with serve_http(TOKEN) as server:
        yield server


def _dead_url() -> str:
    """An http URL on a loopback port with nothing listening."""
    sock = bind_loopback()
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/mcp"


def _call(
    deployment: Deployment,
    method: str,
    path: str,
    token: str | None,
    *,
    json_body: Any = None,
    sandbox: str = "default",
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return deployment.http.request(
        method, f"/api/v1/sandboxes/{sandbox}{path}", headers=headers, json=json_body
    )


def _filled(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "nonexistent"), path)


BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/agents"): {"slug": "intruder", "system_prompt": "x"},
    ("PATCH", "/agents/{slug}"): {"system_prompt": "hijacked"},
    ("POST", "/runs/oneshot"): {"agent": "{slug}", "prompt": "hi"},
    ("POST", "/sources"): {"label": "intruder", "transport": "stdio", "command": "true"},
    ("POST", "/keys"): {"name": "intruder", "role": "owner"},
    ("POST", "/agents/{slug}/triggers"): {"data_source_id": "{ref}"},
}
"""Bodies that would do harm if the call went through; others get their required fields."""


@dataclass
class Operation:
    method: str
    template: str  # under /api/v1/sandboxes/{sandbox}
    body: dict[str, Any] | None


def _operations(deployment: Deployment) -> list[Operation]:
    """Every operation the server documents under a sandbox, with a body that validates."""
    doc = deployment.http.get("/openapi.json").json()
    prefix = "/api/v1/sandboxes/{sandbox}"
    found = []
    for path, operations in doc["paths"].items():
        if not path.startswith(prefix):
            continue
        for method, operation in operations.items():
            template = path.removeprefix(prefix)
            body = None
            if "requestBody" in operation:
                schema = next(iter(operation["requestBody"]["content"].values()))["schema"]
                name = schema.get("$ref", "").rsplit("/", 1)[-1]
                required = doc["components"]["schemas"].get(name, {}).get("required", [])
                body = BODIES.get((method.upper(), template), dict.fromkeys(required, "x"))
            found.append(Operation(method.upper(), template, body))
    return found


@pytest.fixture
def tenant_b(deployment: Deployment, slug: str, orders_mcp: HttpServer) -> dict[str, str]:
    """Things of sandbox ``default``: an agent, a finished run, a source, a key."""
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings())
    run = client.agents.test(slug, event_payload={"tenant": "b"})
    source = client.sources.add(
        f"crm-{slug}", transport="http", url=orders_mcp.url, auth="bearer", token=TOKEN
    )
    key = client.keys.create(f"spare-{slug}", "viewer")
    return {
        "slug": slug,
        "run_id": run.run_id,
        "ref": source.source.source_id,
        "key_id": key.key.key_id,
        "spare_token": key.token,
    }


def test_a_key_of_another_sandbox_gets_404_for_everything_of_this_one(
    deployment: Deployment, tenant_b: dict[str, str]
) -> None:
    intruder = deployment.keys.other_owner
    operations = _operations(deployment)
    assert len(operations) >= 25
    names_b_ids = re.compile(r"\{(slug|run_id|ref|key_id)\}")
    for operation in operations:
        path = _filled(operation.template, tenant_b)
        body = operation.body
        if body is not None:
            body = {k: _filled(v, tenant_b) if isinstance(v, str) else v for k, v in body.items()}
        sent = path + json.dumps(body)
        # Through B's sandbox path; and through the key's own path when it names B's things.
        for sandbox in ("default", OTHER):
            if sandbox == OTHER and not names_b_ids.search(operation.template + sent):
                continue
            response = _call(
                deployment, operation.method, path, intruder, json_body=body, sandbox=sandbox
            )
            crafted = operation.body is None or (operation.method, operation.template) in BODIES
            # A body made up of required fields only may be refused before any lookup.
            allowed = (404,) if crafted or sandbox == "default" else (404, 400, 422)
            assert response.status_code in allowed, (sandbox, operation, response.text)
            problem_of(response)
            for value in tenant_b.values():
                if value not in sent:
                    assert value not in response.text, "a 404 that tells of B's other things"
    # B's things are all still there and B's spare key still works.
    owner = deployment.client()
    assert owner.agents.get(tenant_b["slug"]).system_prompt == "You help."
    assert owner.runs.get(tenant_b["run_id"]).replay_of is None
    runs = owner.agents.runs.list(tenant_b["slug"], limit=100).runs
    assert [run.run_id for run in runs] == [tenant_b["run_id"]], "the intruder fired nothing"
    spare = deployment.client(tenant_b["spare_token"])
    assert spare.agents.get(tenant_b["slug"]).slug == tenant_b["slug"]
    assert "intruder" not in [agent.slug for agent in owner.agents.list()]


def test_another_sandbox_sees_none_of_this_ones_things_in_its_listings(
    deployment: Deployment, tenant_b: dict[str, str]
) -> None:
    other = deployment.client(deployment.keys.other_owner, sandbox=OTHER)
    assert tenant_b["slug"] not in [agent.slug for agent in other.agents.list()]
    assert tenant_b["run_id"] not in [run.run_id for run in other.runs.list(limit=1000).runs]
    assert tenant_b["ref"] not in [source.source_id for source in other.sources.list()]
    assert tenant_b["key_id"] not in [key.key_id for key in other.keys.list()]
    assert [s["sandbox_id"] for s in other.transport.call("list_sandboxes")] == [OTHER]
    admin = deployment.client()
    listed = [s["sandbox_id"] for s in admin.transport.call("list_sandboxes")]
    assert {"default", OTHER} <= set(listed), "an owner of default administers every sandbox"
    with pytest.raises(errors.NotFound):
        other.agents.get(tenant_b["slug"])
    with pytest.raises(errors.NotFound):
        other.runs.get(tenant_b["run_id"])
    with pytest.raises(errors.NotFound):
        other.sources.get(tenant_b["ref"])
    with pytest.raises(errors.NotFound):
        list(Bounded(other.runs.stream(tenant_b["run_id"])))


def test_the_same_slug_lives_apart_in_two_sandboxes(deployment: Deployment, slug: str) -> None:
    mine = deployment.client()
    theirs = deployment.client(deployment.keys.other_owner, sandbox=OTHER)
    mine.agents.create(slug, "Mine.", model_settings=quick_settings("mine"))
    theirs.agents.create(slug, "Theirs.", model_settings=quick_settings("theirs"))
    assert mine.agents.test(slug).output_text == "mine"
    assert theirs.agents.test(slug).output_text == "theirs"
    assert len(mine.agents.runs.list(slug).runs) == 1
    assert len(theirs.agents.runs.list(slug).runs) == 1


def test_a_viewer_of_another_sandbox_is_still_404_not_403(
    deployment: Deployment, tenant_b: dict[str, str]
) -> None:
    response = _call(
        deployment,
        "PATCH",
        f"/agents/{tenant_b['slug']}",
        deployment.keys.other_viewer,
        json_body={"system_prompt": "x"},
    )
    assert response.status_code == 404, "another tenant learns nothing, not even 'forbidden'"


def test_missing_malformed_and_unknown_keys_get_401_problems(deployment: Deployment) -> None:
    for token in (None, "not-a-key", "key_nothing", "key_01ABC.wrong-secret", "key_x."):
        response = _call(deployment, "GET", "/agents", token)
        assert response.status_code == 401, token
        assert problem_of(response)["error"] == "Unauthorized"
    basic = deployment.http.get(
        "/api/v1/sandboxes/default/agents",
        headers={"Authorization": "Basic dXNlcjpwYXNz"},
    )
    assert basic.status_code == 401
    with pytest.raises(errors.Unauthorized):
        deployment.client("key_01ABC.wrong-secret").agents.list()
    stream = deployment.http.get("/api/v1/sandboxes/default/runs/run_x/stream")
    assert stream.status_code == 401


def test_a_revoked_key_gets_401_from_then_on(deployment: Deployment, slug: str) -> None:
    owner = deployment.client()
    owner.agents.create(slug, "You help.", model_settings=quick_settings())
    run = owner.agents.test(slug)
    made = owner.keys.create(f"temp-{slug}", "editor")
    temp = deployment.client(made.token)
    assert temp.agents.get(slug).slug == slug
    revoked = owner.keys.revoke(made.key.key_id)
    assert revoked.revoked_at is not None
    for call in (
        lambda: temp.agents.get(slug),
        lambda: temp.agents.test(slug),
        lambda: temp.runs.get(run.run_id),
        lambda: list(Bounded(temp.runs.stream(run.run_id))),
        lambda: temp.agents.update(slug, description="x"),
    ):
        with pytest.raises(errors.Unauthorized, match="revoked"):
            call()
    listed = {key.key_id: key for key in owner.keys.list()}
    assert listed[made.key.key_id].revoked_at is not None


def test_keys_are_shown_once_and_stored_only_as_a_hash(deployment: Deployment) -> None:
    owner = deployment.client()
    made = owner.keys.create("shown-once", "viewer")
    key_id, _, secret = made.token.partition(".")
    assert key_id == made.key.key_id and len(secret) >= 32
    assert made.key.role == "viewer"
    listing = owner.transport.call("list_keys")
    assert secret not in json.dumps(listing)
    assert all(set(item) == set(made.key.model_dump()) for item in listing)
    with deployment.app.store.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).one()
    assert secret not in json.dumps(dict(row._mapping), default=str)
    assert row.secret_sha256 != secret and len(row.secret_sha256) == 64


def test_an_owner_may_not_make_keys_with_an_unknown_role(deployment: Deployment) -> None:
    response = _call(
        deployment, "POST", "/keys", deployment.keys.owner, json_body={"role": "admin"}
    )
    assert response.status_code == 422
    assert "role" in problem_of(response)["detail"]


def test_no_response_event_or_problem_carries_a_source_secret(
    deployment: Deployment, slug: str, orders_mcp: HttpServer
) -> None:
    owner = deployment.client()
    captured: list[str] = []

    def keep(response: httpx.Response) -> httpx.Response:
        captured.append(response.text)
        return response

    def call(method: str, path: str, body: Any = None) -> httpx.Response:
        return keep(_call(deployment, method, path, deployment.keys.owner, json_body=body))

    crm = f"crm-{slug}"
    added = call(
        "POST",
        "/sources",
        {
            "label": crm,
            "transport": "http",
            "url": orders_mcp.url,
            "auth": "bearer",
            "token": TOKEN,
            "namespace": "crm",
        },
    )
    assert added.status_code == 201, added.text
    assert added.json()["ok"] is True
    assert added.json()["source"]["config"]["secret_fields"] == ["token"]
    dead = call(
        "POST",
        "/sources",
        {
            "label": f"dead-{slug}",
            "transport": "http",
            "url": _dead_url(),
            "auth": "header",
            "header_name": "X-Api-Key",
            "token": DEAD_TOKEN,
        },
    )
    assert dead.status_code == 201, dead.text
    assert dead.json()["ok"] is False
    assert dead.json()["source"]["status"] == "error"
    dead_id = dead.json()["source"]["source_id"]
    from dataclasses import replace

    settings = deployment.app.settings  # only a command the operator lists may be added
    deployment.app.settings = replace(settings, stdio_commands=("/nonexistent/mcp-server",))
    try:
        stdio = call(
            "POST",
            "/sources",
            {
                "label": f"env-{slug}",
                "transport": "stdio",
                "command": "/nonexistent/mcp-server",
                "env": {"API_SECRET": ENV_SECRET},
            },
        )
    finally:
        deployment.app.settings = settings
    assert stdio.status_code == 201, stdio.text
    assert stdio.json()["source"]["config"]["secret_fields"] == ["env:API_SECRET"]

    script = {
        "turns": [
            {"tool_calls": [{"name": "crm_lookup_order", "arguments": {"order_id": "A-1"}}]},
            {"text": "Result: {{results.-1}}"},
        ]
    }
    owner.agents.create(
        slug,
        "You help.",
        tool_sources=["builtin", crm, f"dead-{slug}", f"env-{slug}"],
        model_settings={"backend": "scripted", "script": script, "timeout_s": 30},
    )
    run = keep(call("POST", f"/agents/{slug}/test", {"event_payload": {}})).json()
    assert run["status"] == "succeeded", run
    assert run["output_text"] == "Result: order A-1: shipped"
    skipped = {s["label"] for s in run["tool_resolution_trace"]["sources_skipped"]}
    assert skipped == {f"dead-{slug}", f"env-{slug}"}
    fired = call("POST", f"/agents/{slug}/fire", {"event_payload": {"again": True}}).json()
    with httpx.stream(
        "GET",
        f"{deployment.url}/api/v1/sandboxes/default/runs/{fired['run_id']}/stream",
        headers={"Authorization": f"Bearer {deployment.keys.owner}"},
        timeout=10,
    ) as response:
        lines = list(response.iter_lines())
    captured.append("\n".join(lines))
    assert [f.event for f in sse_frames(iter(lines))][-1] == "end"

    for method, path in [
        ("GET", "/sources"),
        ("GET", f"/sources/{crm}"),
        ("GET", f"/sources/{dead_id}"),
        ("POST", f"/sources/{crm}/test"),
        ("POST", f"/sources/{dead_id}/test"),
        ("GET", f"/agents/{slug}/tools"),
        ("GET", f"/agents/{slug}/runs"),
        ("GET", f"/runs/{run['run_id']}"),
        ("GET", f"/runs/{run['run_id']}/events"),
        ("GET", f"/runs/{run['run_id']}/trace"),
        ("GET", f"/runs/{fired['run_id']}/events"),
        ("POST", f"/runs/{run['run_id']}/replay"),
    ]:
        response = call(method, path, {} if path.endswith("/replay") else None)
        assert response.status_code < 400, (path, response.text)
    # Problems that see the secret in the request must not echo it back.
    for body in (
        {
            "label": crm,
            "transport": "http",
            "url": orders_mcp.url,
            "auth": "bearer",
            "token": TOKEN,
        },
        {"label": "x", "transport": "http", "url": "ftp://nope", "auth": "bearer", "token": TOKEN},
        {"label": "x", "transport": "stdio", "command": "c", "auth": "bearer", "token": TOKEN},
        {"label": "x", "transport": "http", "url": orders_mcp.url, "token": [TOKEN]},
        {"label": "x", "transport": "http", "token": TOKEN, "tokne": TOKEN},
        {"label": "x", "transport": "stdio", "command": "c", "env": {"K": [ENV_SECRET]}},
    ):
        response = call("POST", "/sources", body)
        assert 400 <= response.status_code < 500, response.text
        problem_of(response)
    revoked = call("POST", f"/sources/{crm}/revoke")
    assert revoked.json()["status"] == "revoked"

    assert len(captured) > 25
    for text in captured:
        for secret in SECRETS:
            assert secret not in text
    with deployment.app.store.connect() as conn:
        stored = conn.execute(select(sources.c.secret_ciphertext, sources.c.config)).all()
    for ciphertext, config in stored:
        for secret in SECRETS:
            assert secret not in (ciphertext or "") and secret not in json.dumps(config)
