"""``cairn serve`` enforces usage thresholds by itself: an agent fired over its threshold
through the running server has its triggers paused within a minute, with no command run;
the pause is recorded with its reason and ``doctor`` says so."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import cairn
from cairn.config import Settings
from cairn.services.access import create_key
from cairn.services.app import App
from cairn.services.triggers import create_trigger, get_trigger
from cairn.services.usage import list_enforcements, set_threshold
from cairn.services.usage_watch import tick
from cairn.services.webhooks import add_webhook_source
from cairn.store import open_store
from tests.api.helpers import LiveServer
from tests.usage.helpers import make_agent

pytestmark = pytest.mark.anyio

DEADLINE_S = 60.0


def _wait_paused(app: App, trigger_id: str) -> float:
    """Seconds until the trigger is paused (polled; fails after the deadline)."""
    started = time.monotonic()
    while get_trigger(app, "default", trigger_id).status != "paused":
        elapsed = time.monotonic() - started
        assert elapsed < DEADLINE_S, "cost-watch did not pause the trigger within a minute"
        time.sleep(0.05)
    return time.monotonic() - started


async def test_the_server_pauses_a_runaway_agents_triggers_within_a_minute(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        home=tmp_path, database_url=database_url, resolve_timeout_s=3.0, cost_watch_interval_s=0.5
    )
    app = App(settings, open_store(database_url))
    await make_agent(app, "chatty", tokens_in=400, tokens_out=200)
    await make_agent(app, "calm", tokens_in=1, tokens_out=1)
    source = add_webhook_source(app, "default", "chat").source
    chatty = create_trigger(app, "default", "chatty", source.source_id)
    calm = create_trigger(app, "default", "calm", source.source_id)
    set_threshold(app, "default", "chatty", tokens_per_hour=1000, pause_triggers=True)
    set_threshold(app, "default", "calm", tokens_per_hour=1000, pause_triggers=True)
    token = create_key(app, "default", "owner", "owner")[1]
    server = LiveServer(app).start()
    try:
        with cairn.Client(server.url, api_key=token) as client:
            for _ in range(2):  # 1,200 tokens: over the threshold
                assert client.agents.test("chatty", {"say": "hi"}).status == "succeeded"
            client.agents.test("calm", {})
            waited = _wait_paused(app, chatty.trigger_id)
            report = client.doctor()
    finally:
        server.stop()
    try:
        assert waited < DEADLINE_S
        assert get_trigger(app, "default", calm.trigger_id).status == "active"
        (record,) = list_enforcements(app, "default")
        assert record.agent_slug == "chatty" and record.trigger_ids == (chatty.trigger_id,)
        assert record.value == 1200 and record.threshold == 1000
        assert f"cairn agent trigger resume {chatty.trigger_id}" in record.reason
        paused = [f for f in report.findings if f.code == "cost_watch_paused"]
        assert [f.subject for f in paused] == ["chatty"]
        assert chatty.trigger_id in paused[0].cause and "1,200" in paused[0].cause
        assert not [f for f in report.findings if f.code == "trigger_paused"]  # said once
        assert not report.ok
        assert tick(app) == {}  # enforced already: a next pass pauses nothing more
    finally:
        app.close()
