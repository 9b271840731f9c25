"""``traceparent`` in: a webhook delivery or an API fire links its run to the caller's trace."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from cairn.api.app import create_app
from cairn.services.access import create_key
from cairn.services.app import App
from cairn.services.runs import RunQuery, list_runs
from cairn.services.triggers import create_trigger
from cairn.services.webhooks import add_webhook_source, sign
from cairn.telemetry.context import parse_traceparent, valid_traceparent
from tests.runner.helpers import SANDBOX, make_agent
from tests.telemetry.receiver import Receiver

BASE = f"/api/v1/sandboxes/{SANDBOX}"
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        (CALLER, CALLER),
        (CALLER.upper(), CALLER),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", CALLER[:-2] + "00"),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", CALLER),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", None),
        ("00-4bf92f35-00f067aa0ba902b7-01", None),
        ("", None),
        (None, None),
    ],
)
def test_a_traceparent_is_kept_only_when_valid(header: str | None, kept: str | None) -> None:
    assert valid_traceparent(header) == kept


def test_a_parsed_traceparent_gives_the_callers_ids_and_sampling() -> None:
    parent = parse_traceparent(CALLER)
    assert parent is not None
    assert (parent.trace_id, parent.span_id, parent.sampled) == (
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
        True,
    )


@pytest.fixture
async def http(app: App) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    key = create_key(app, SANDBOX, "editor", "editor")[1]
    served = create_app(app)
    async with (
        served.router.lifespan_context(served),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served), base_url="http://cairn.test"
        ) as client,
    ):
        yield client, {"Authorization": f"Bearer {key}"}


@pytest.mark.anyio
async def test_an_api_fire_keeps_a_valid_traceparent_and_ignores_a_bad_one(
    app: App, http: tuple[httpx.AsyncClient, dict[str, str]]
) -> None:
    client, auth = http
    await make_agent(app, "Done.", slug="echo")
    linked = await client.post(
        f"{BASE}/agents/echo/test", json={}, headers=auth | {"traceparent": CALLER}
    )
    broken = await client.post(
        f"{BASE}/agents/echo/test", json={}, headers=auth | {"traceparent": "not-a-trace"}
    )
    assert linked.status_code == 200, linked.text
    assert broken.status_code == 200, broken.text  # a caller's tracing bug never refuses
    assert linked.json()["traceparent"] == CALLER
    assert broken.json()["traceparent"] is None


@pytest.mark.anyio
async def test_a_webhook_delivery_with_traceparent_exports_its_run_under_the_callers_span(
    export_on: Receiver, app: App, http: tuple[httpx.AsyncClient, dict[str, str]]
) -> None:
    client, _auth = http
    await make_agent(app, "Triaged.", slug="triage")
    hook = add_webhook_source(app, SANDBOX, "github")
    trigger = create_trigger(app, SANDBOX, "triage", hook.source.source_id)
    assert hook.secret is not None  # a native source's secret is made at creation
    body = json.dumps({"type": "issue.opened", "payload": {"title": "broken"}}).encode()
    stamp = str(int(time.time()))
    answer = await client.post(
        hook.path,
        content=body,
        headers={
            "X-Cairn-Timestamp": stamp,
            "X-Cairn-Signature": sign(hook.secret, stamp, body),
            "traceparent": CALLER,
        },
    )
    assert answer.status_code == 202, answer.text

    with anyio.fail_after(20):
        while True:
            runs = list_runs(app, SANDBOX, RunQuery(trigger_id=trigger.trigger_id))
            if runs and runs[0].status == "succeeded":
                break
            await anyio.sleep(0.02)
    assert runs[0].traceparent == CALLER
    observer = app.runner.observer
    assert observer is not None and observer.flush(20.0)  # type: ignore[attr-defined]
    roots = [
        s for s in export_on.received.spans if s.attributes.get("cairn.run.id") == runs[0].run_id
    ]
    assert [(s.trace_id, s.parent_span_id) for s in roots] == [
        ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    ]
    assert roots[0].attributes["cairn.trigger.id"] == trigger.trigger_id
    assert roots[0].attributes["cairn.run.kind"] == "trigger"
