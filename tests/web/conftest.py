"""Fixtures of the dashboard tests: one real ``cairn serve`` app on loopback over a ledger
with a story in it, and headless Chromium driven by Playwright.

The ledger holds agents that show each thing the dashboard must make obvious: ``support``
acts (a tool call with arguments and a result), ``triage`` is the silent no-op (a stale
allowlist entry), ``reporter`` has a source that is down (skipped, ``unreachable``),
``broken`` fails, ``slow`` and ``hanging`` stay live long enough to watch and to cancel.
A webhook trigger on ``support`` has fired twice; a trigger of ``reporter`` filtered out
both events of its Slack source ("channel missing, wanted 'C123'"), which also refused one
delivery (bad signature); a cost-watch threshold flags ``support`` as a runaway. Two more
sandboxes, ``demo`` and ``scratch``, are empty (the switcher, the empty state). Scripted
models are priced here, so costs are not all zero.

Chromium is Debian's ``/usr/bin/chromium`` (``make browser`` installs it), launched by
Playwright with its executable path (``CAIRN_CHROMIUM`` points elsewhere): ``playwright
install`` is never needed. Without it the
browser tests are skipped with a notice, unless ``CAIRN_REQUIRE_BROWSER=1`` (``.ci/run``),
which makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from cairn.config import Settings
from cairn.domain.agents import ModelSettings
from cairn.domain.deliveries import DeliveryFacts
from cairn.domain.runs import Run
from cairn.services.access import create_key, create_sandbox, local_key
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.ingest import ingest, record_rejected
from cairn.services.runs import fire_agent
from cairn.services.sources import McpSourceSpec, add_mcp_source
from cairn.services.triggers import create_trigger
from cairn.services.webhooks import add_webhook_source
from cairn.store import open_store
from tests.api.helpers import LiveServer, hanging_settings, slow_settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path(os.environ.get("CAIRN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_BROWSER = os.environ.get("CAIRN_REQUIRE_BROWSER") == "1"
WRITE_SCREENSHOTS = os.environ.get("CAIRN_WRITE_SCREENSHOTS") == "1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
OTHER = "other"

LOOKUP_SCRIPT: dict[str, Any] = {
    "turns": [
        {
            "text": "Looking the order up. ",
            "tool_calls": [
                {
                    "name": "json_extract",
                    "arguments": {"document": "{{event}}", "path": "order_id"},
                }
            ],
        },
        {"text": "Order {{results.0}} is on its way."},
    ]
}


@dataclass
class Dashboard:
    """The served app, its keys and the runs it was seeded with."""

    server: LiveServer
    app: App
    owner: str
    viewer: str
    other_owner: str
    runs: dict[str, Run]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.server.url

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, as browsers send it in ``Host``."""
        return self.url.removeprefix("http://")


def _dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    return f"http://127.0.0.1:{port}/mcp"


async def _seed(app: App) -> dict[str, Run]:
    builtin = ["builtin"]
    specs = [
        AgentSpec(
            slug="support",
            name="Support",
            description="Answers order questions.",
            system_prompt="Look the order up, then answer.",
            tool_sources=builtin,
            tool_allowlist=["json_extract", "clock_now"],
            model_settings=ModelSettings(script=LOOKUP_SCRIPT),
        ),
        AgentSpec(
            slug="triage",
            name="Triage",
            description="Files a ticket for every bug report.",
            system_prompt="File a ticket for every bug report.",
            tool_sources=builtin,
            tool_allowlist=["json_extrakt"],
            model_settings=ModelSettings(script={"turns": [{"text": ""}]}),
        ),
        AgentSpec(
            slug="reporter",
            name="Reporter",
            description="Writes the daily report from the CRM.",
            system_prompt="Write the daily report.",
            tool_sources=["builtin", "crm"],
            tool_allowlist=["crm_*", "clock_now"],
            model_settings=ModelSettings(
                script={
                    "turns": [
                        {
                            "text": "Checking. ",
                            "tool_calls": [{"name": "clock_now", "arguments": {}}],
                        },
                        {"text": "Report stamped {{results.0}}; the CRM was down."},
                    ]
                }
            ),
        ),
        AgentSpec(
            slug="broken",
            name="Broken",
            description="Its model always errors.",
            system_prompt="You fail.",
            tool_sources=builtin,
            model_settings=ModelSettings(script={"turns": [{"error": "upstream said 500"}]}),
        ),
        AgentSpec(
            slug="slow",
            system_prompt="Take your time.",
            tool_sources=builtin,
            model_settings=ModelSettings.from_dict(slow_settings(turns=3, delay_s=0.4)),
        ),
        AgentSpec(
            slug="hanging",
            system_prompt="Wait.",
            tool_sources=builtin,
            model_settings=ModelSettings.from_dict(hanging_settings(60.0)),
        ),
    ]
    await add_mcp_source(
        app, "default", McpSourceSpec(label="crm", transport="http", url=_dead_url())
    )
    for spec in specs:
        await create_agent(app, "default", spec)
    hook = add_webhook_source(app, "default", "orders-hook")
    create_trigger(
        app, "default", "support", hook.source.source_id, event_type_filter="order.created"
    )
    for order in ("A-1001", "A-1002"):
        await ingest(app, hook.source, "order.created", {"order_id": order})
    slack = add_webhook_source(app, "default", "slack-hook")
    create_trigger(
        app,
        "default",
        "reporter",
        slack.source.source_id,
        event_type_filter="message.created",
        filter_config={"channel": "C123"},
    )
    record_rejected(
        app,
        slack.source,
        "bad signature: the X-Cairn-Signature does not match",
        DeliveryFacts(provider="cairn", refusal="bad_signature"),
    )
    for number, text in enumerate(("daily report please", "report!")):
        await ingest(
            app,
            slack.source,
            "message.created",
            {"text": text, "user": "U1"},
            delivery=DeliveryFacts(
                provider="cairn", delivery_id=f"dlv-{number}", type_from="X-Cairn-Event"
            ),
        )
    return {
        "reporter": await fire_agent(app, "default", "reporter", {"date": "today"}, kind="manual"),
        "broken": await fire_agent(app, "default", "broken", {"title": "x"}),
        "triage": await fire_agent(app, "default", "triage", {"title": "broken checkout"}),
        "support": await fire_agent(app, "default", "support", {"order_id": "A-1003"}),
    }


@pytest.fixture(scope="package")
def dashboard(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Dashboard]:
    """A served Cairn over a seeded SQLite ledger, for this folder's tests."""
    home = tmp_path_factory.mktemp("web-home")
    (home / "prices.json").write_text(json.dumps({"scripted:*": {"input": 3.0, "output": 15.0}}))
    ledger = home / "ledger.db"
    shutil.copy(sqlite_template, ledger)
    url = f"sqlite:///{ledger}"
    app = App(
        Settings(home=home, database_url=url, resolve_timeout_s=3.0, dashboard_autologin=True),
        open_store(url),
    )
    create_sandbox(app, OTHER, "Another tenant")
    for empty in ("demo", "scratch"):
        create_sandbox(app, empty, f"Empty sandbox {empty}")
    owner = create_key(app, "default", "owner", "owner")[1]
    viewer = create_key(app, "default", "viewer", "viewer")[1]
    other_owner = create_key(app, OTHER, "owner", "owner")[1]
    local_key(app, "default")  # what ``cairn serve`` does: the local browser's login
    runs = anyio.run(_seed, app)
    from cairn.services.usage import set_threshold

    set_threshold(app, "default", "support", tokens_per_hour=200)
    server = LiveServer(app).start()
    try:
        yield Dashboard(server, app, owner, viewer, other_owner, runs)
    finally:
        server.stop()
        app.close()


@pytest.fixture(scope="package")
def chromium_path() -> Path:
    """Debian's Chromium, or a skip (a failure under ``CAIRN_REQUIRE_BROWSER=1``)."""
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM}: run `make browser`"
        if REQUIRE_BROWSER:
            pytest.fail(f"{message} (CAIRN_REQUIRE_BROWSER=1)")
        pytest.skip(f"{message}; the browser tests are skipped")
    return CHROMIUM


@pytest.fixture(scope="package")
def browser(chromium_path: Path, dashboard: Dashboard) -> Iterator[Browser]:
    """Headless Chromium under Playwright, for this folder's tests. Playwright's sync API
    keeps an event loop running on this thread until it stops, so the dashboard (seeded with
    ``anyio.run``) is made first, and the browser stops when the last test here is done:
    the async tests of later folders need the thread's loop free."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser, dashboard: Dashboard) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) on a laptop-sized screen; page errors fail."""
    made = browser.new_context(base_url=dashboard.url, viewport={"width": 1366, "height": 900})
    made.set_default_timeout(10_000)
    errors: list[str] = []
    made.on("weberror", lambda error: errors.append(str(error.error)))
    try:
        yield made
    finally:
        made.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot in docs/screenshots/ (for reviewers; README links it),
    only when ``CAIRN_WRITE_SCREENSHOTS=1``: an ordinary test run leaves the tracked
    pictures alone."""
    if not WRITE_SCREENSHOTS:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True, animations="disabled")
