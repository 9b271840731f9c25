"""A deep, a huge and a NaN payload on every JSON intake is refused with a clear 4xx that
names the limit, and no stored record can make a listing fail."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import httpx
import pytest

from cairn.domain.limits import MAX_DEPTH, MAX_REQUEST_BYTES
from cairn.services.ingest import ingest
from cairn.services.runs import fire_agent
from cairn.services.webhooks import add_webhook_source, sign
from tests.security.conftest import Site, build_app


def _deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def _body_operations(site: Site) -> list[tuple[str, str]]:
    """Every API operation that takes a JSON body, with ``default``'s paths filled in."""
    with site.http(site.keys.owner) as http:
        document = http.get("/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation and path.startswith("/api/"):
                filled = (
                    path.replace("{sandbox}", "default")
                    .replace("{slug}", "helper")
                    .replace("{run_id}", "run_00000000000000000000000000")
                )
                for name in ("ref", "trigger_id", "key_id", "backend", "connection_id"):
                    filled = filled.replace("{" + name + "}", "x")
                found.append((method.upper(), filled))
    assert len(found) >= 10, found
    return found


PAYLOADS = {
    "deep": (_deep(300).encode(), 400, f"the limit is {MAX_DEPTH}"),
    "very-deep": (("[" * 100_000 + "]" * 100_000).encode(), 400, f"the limit is {MAX_DEPTH}"),
    "nan": (b'{"event_payload": NaN, "prompt": "x"}', 400, "not JSON"),
    "infinity": (b'{"event_payload": {"x": -Infinity}}', 400, "not JSON"),
    "huge": (
        b'{"event_payload": "' + b"x" * (MAX_REQUEST_BYTES + 10) + b'"}',
        413,
        f"{MAX_REQUEST_BYTES} byte limit",
    ),
}


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_every_json_intake_refuses_deep_huge_and_nan_bodies(site: Site, kind: str) -> None:
    body, status, message = PAYLOADS[kind]
    with site.http(site.keys.owner) as http:
        for method, path in _body_operations(site):
            response = http.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == status, (method, path, response.text[:200])
            assert message in response.json()["detail"], (method, path, response.text[:200])


def test_a_body_without_a_key_gets_401_before_it_is_judged(site: Site) -> None:
    with site.http() as http:
        for method, path in _body_operations(site):
            response = http.request(
                method, path, content=b"{oops", headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 401, (method, path, response.text[:200])


def test_a_webhook_refuses_deep_and_nan_deliveries_and_records_them(site: Site) -> None:
    hook = add_webhook_source(site.app, "default", "deep-hook")
    bodies = [
        b'{"type": "x", "payload": ' + _deep(300).encode() + b"}",
        b'{"type": "x", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"type": "x", "payload": NaN}',
    ]
    with httpx.Client(base_url=site.url, timeout=10.0) as http:
        for body in bodies:
            stamp = str(int(time.time()))
            response = http.post(
                hook.path,
                content=body,
                headers={
                    "X-Cairn-Timestamp": stamp,
                    "X-Cairn-Signature": sign(hook.secret or "", stamp, body),
                },
            )
            assert response.status_code == 400, response.text
            assert "limit is" in response.text or "not JSON" in response.text
        alive = http.get("/healthz")  # the connection and the server survived
    assert alive.status_code == 200
    with site.http(site.keys.owner) as api:
        events = api.get("/api/v1/sandboxes/default/events", params={"source": "deep-hook"}).json()
    rejected = [event for event in events["events"] if event["status"] == "rejected"]
    assert len(rejected) == 3


def test_a_flood_of_unsigned_posts_is_counted_not_stored_row_by_row(site: Site) -> None:
    hook = add_webhook_source(site.app, "default", "flooded-hook")
    with httpx.Client(base_url=site.url, timeout=10.0) as http:
        answers = [http.post(hook.path, content=b'{"type": "x"}').status_code for _ in range(60)]
    assert set(answers) == {401}
    with site.http(site.keys.owner) as api:
        events = api.get(
            "/api/v1/sandboxes/default/events", params={"source": "flooded-hook", "limit": 100}
        ).json()
    assert 1 <= len(events["events"]) <= 10, len(events["events"])


def test_a_webhook_id_of_zero_is_an_id_and_is_deduplicated(site: Site) -> None:
    hook = add_webhook_source(site.app, "default", "zero-hook")
    body = b'{"type": "x", "id": 0, "payload": {}}'
    codes = []
    with httpx.Client(base_url=site.url, timeout=10.0) as http:
        for _ in range(2):
            stamp = str(int(time.time()))
            codes.append(
                http.post(
                    hook.path,
                    content=body,
                    headers={
                        "X-Cairn-Timestamp": stamp,
                        "X-Cairn-Signature": sign(hook.secret or "", stamp, body),
                    },
                ).status_code
            )
    assert codes == [202, 200], "the second delivery of id 0 is a repeat"


@pytest.mark.parametrize(
    "label", ["builtin", "Webhook", "bad\x00label", "tab\there", "new\nline", "src_123", ""]
)
def test_unusable_source_labels_are_refused(site: Site, label: str) -> None:
    with site.http(site.keys.owner) as http:
        response = http.post("/api/v1/sandboxes/default/sources/webhooks", json={"label": label})
    assert response.status_code in (400, 422), response.text
    assert "label" in response.text


def _poison(site: Site) -> dict[str, str]:
    """Records written before the limits existed (straight through the services)."""
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    writer = build_app(site.home, site.app.settings.database_url)  # no live bus
    try:
        run = anyio.run(fire_agent, writer, "default", "helper", deep)
        hook = add_webhook_source(writer, "default", "poisoned-hook")
        result = anyio.run(ingest, writer, hook.source, "x", {"n": float("nan"), "deep": deep})
    finally:
        writer.close()
    return {"run": run.run_id, "event": result.event_id}


def test_a_stored_record_never_makes_a_listing_fail(site: Site) -> None:
    poisoned = _poison(site)
    with site.http(site.keys.owner) as http:
        document = http.get("/openapi.json").json()
        listings = [
            path.replace("{sandbox}", "default")
            for path, operations in document["paths"].items()
            if "get" in operations
            and path.startswith("/api/")
            and path.replace("{sandbox}", "").count("{") == 0
            and not path.endswith("/stream")
        ]
        listings += [
            f"/api/v1/sandboxes/default/runs/{poisoned['run']}",
            f"/api/v1/sandboxes/default/runs/{poisoned['run']}/events",
            f"/api/v1/sandboxes/default/events/{poisoned['event']}",
            "/api/v1/sandboxes/default/agents/helper/runs",
        ]
        for path in listings:
            response = http.get(path)
            assert response.status_code == 200, (path, response.text[:300])
        shown = http.get(f"/api/v1/sandboxes/default/runs/{poisoned['run']}").json()
    assert "cairn_unreadable" in json.dumps(shown["event_payload"])
    with httpx.Client(base_url=site.url, timeout=10.0) as browser:
        browser.post("/login", data={"key": site.keys.owner})
        for page in ("/runs", f"/runs/{poisoned['run']}", "/agents/helper"):
            assert browser.get(page).status_code == 200, page
