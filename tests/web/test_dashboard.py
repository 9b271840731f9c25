"""The dashboard in headless Chromium against a real ``cairn serve`` app on loopback.

Each acceptance point of the dashboard is walked through as a person would: log in, read
the runs, filter them, fire a test run and watch it appear and finish without a reload,
open a run and read its tool calls and trace, cancel a live run, and check that another
sandbox's key sees none of it. Waits are Playwright's bounded auto-waiting assertions,
never sleeps. A screenshot of each page goes to docs/screenshots/.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.web.conftest import Dashboard, screenshot

expect.set_options(timeout=10_000)


def login(context: BrowserContext, key: str) -> Page:
    """A page logged in through the login form with ``key``."""
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs$"))
    return page


def api(dashboard: Dashboard, key: str | None = None) -> httpx.Client:
    """The API with a bearer key (the owner's by default)."""
    return httpx.Client(
        base_url=f"{dashboard.url}/api/v1/sandboxes/default",
        headers={"Authorization": f"Bearer {key or dashboard.owner}"},
        timeout=10.0,
    )


def row(page: Page, run_id: str) -> Locator:
    """The runs table's row of ``run_id``."""
    return page.locator(f'table#runs tbody tr[data-run-id="{run_id}"]')


def test_the_login_page_takes_a_key_into_an_httponly_strict_cookie(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = context.new_page()
    page.goto("/login")
    expect(page.get_by_role("heading", name="Log in to Cairn")).to_be_visible()
    screenshot(page, "login.png")
    page.get_by_label("API key").fill("key_nope.wrong")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked API key")

    page.get_by_label("API key").fill(dashboard.viewer)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs$"))
    expect(page.locator("header .who")).to_contain_text("default (viewer)")
    cookie = next(c for c in context.cookies() if c["name"] == "cairn_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find("cairn_session") == -1, "not readable by scripts"


def test_a_local_browser_opens_the_dashboard_without_a_key_and_logging_out_asks_for_one(
    context: BrowserContext,
) -> None:
    page = context.new_page()
    page.goto("/")
    expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
    expect(page.locator("header .who")).to_contain_text("default (owner)")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/runs")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fruns$"))


def test_the_runs_page_lists_runs_across_agents_and_filters_by_status(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = login(context, dashboard.owner)
    for slug in ("support", "triage", "reporter", "broken"):
        expect(row(page, dashboard.runs[slug].run_id)).to_be_visible()
    expect(page.locator("table#runs th", has_text="Trigger")).to_be_visible()
    screenshot(page, "runs.png")

    page.get_by_label("Status").select_option("failed")
    expect(page).to_have_url(re.compile(r"status=failed"))
    statuses = page.locator("table#runs tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )
    assert statuses and set(statuses) == {"failed"}
    expect(row(page, dashboard.runs["broken"].run_id)).to_be_visible()
    expect(row(page, dashboard.runs["support"].run_id)).to_have_count(0)

    page.get_by_label("Agent").select_option("triage")
    expect(page).to_have_url(re.compile(r"agent=triage"))
    expect(page.locator("#runs-empty")).to_contain_text("No runs match these filters")


def test_a_run_is_found_by_the_start_of_its_id(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = login(context, dashboard.owner)
    wanted = dashboard.runs["reporter"].run_id
    page.get_by_label("Run id").fill(wanted[:16])
    page.get_by_label("Run id").press("Enter")
    expect(row(page, wanted)).to_be_visible()
    assert all(
        run_id.startswith(wanted[:16])
        for run_id in page.locator("table#runs tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.runId)"
        )
    )


def test_a_test_fire_from_the_agent_page_appears_in_the_runs_and_finishes_without_reload(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    runs = login(context, dashboard.owner)
    runs.evaluate("window.notReloaded = true")
    agent = context.new_page()
    agent.goto("/agents/slow")
    agent.get_by_role("button", name="Fire test run").click()
    link = agent.locator("#fire-run-link")
    expect(link).to_have_text(re.compile(r"^run_"))
    run_id = link.inner_text()

    appeared = row(runs, run_id)
    expect(appeared).to_be_visible()
    assert appeared.get_attribute("data-status") in ("queued", "running")
    expect(appeared.locator('[data-col="status"]')).to_have_text("succeeded")
    expect(appeared.locator('[data-col="tools"]')).to_have_text("3")
    assert runs.evaluate("window.notReloaded") is True

    expect(agent.locator("#fire-status")).to_contain_text("succeeded")
    expect(agent.locator("#fire-timeline li.step-tool")).to_have_count(3)
    expect(agent.locator("#fire-timeline")).to_contain_text("All steps done")
    expect(row(agent, run_id)).to_be_visible()


def test_the_run_detail_shows_the_tool_calls_timeline_and_trace(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = login(context, dashboard.owner)
    support = dashboard.runs["support"].run_id
    page.locator(f'a[href="/runs/{support}"]').first.click()
    expect(page.get_by_role("heading", name=f"Run {support}")).to_be_visible()
    call = page.locator("#timeline li.step-tool")
    expect(call.locator(".tool-name")).to_have_text("json_extract")
    expect(call.locator("pre.args")).to_contain_text('"path": "order_id"')
    expect(call.locator("pre.result")).to_contain_text("A-1003")
    expect(call.locator(".step-time")).to_contain_text("took")
    expect(page.locator(".waterfall .bar-tool")).to_contain_text("json_extract")
    expect(page.locator(".trace")).to_have_class(re.compile("verdict-ok"))
    expect(page.locator(".trace .advertised")).to_contain_text("json_extract")
    screenshot(page, "run-detail.png")

    page.goto(f"/runs/{dashboard.runs['triage'].run_id}")
    expect(page.locator(".alert.noop")).to_contain_text("Silent no-op")
    expect(page.locator(".trace")).to_have_class(re.compile("verdict-bad"))
    stale = page.locator("li.stale")
    expect(stale).to_contain_text("json_extrakt")
    expect(stale).to_contain_text("json_extract")
    expect(page.locator(".trace details.filtered summary")).to_contain_text("filtered out")

    page.goto(f"/runs/{dashboard.runs['reporter'].run_id}")
    skipped = page.locator(".trace tr.skipped")
    expect(skipped).to_contain_text("crm")
    expect(skipped).to_contain_text("unreachable")
    expect(page.get_by_role("heading", name="Explanation")).to_be_visible()
    expect(page.locator(".explanation")).to_contain_text("crm")


def test_a_running_run_is_shown_live_and_can_be_cancelled(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    with api(dashboard) as client:
        fired = client.post("/agents/hanging/fire", json={"event_payload": {"title": "x"}})
    run_id = fired.json()["run_id"]
    page = login(context, dashboard.owner)
    page.goto(f"/runs/{run_id}")
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#run-status")).to_contain_text("running")
    expect(page.locator("#timeline li.step-tool .tool-name")).to_have_text("clock_now")
    expect(page.locator("#timeline li.step-tool pre.result")).to_be_visible()

    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("#run-status")).to_contain_text("cancelled")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    expect(page.locator("#run")).to_have_attribute("data-status", "cancelled")
    assert page.evaluate("window.notReloaded") is True
    with api(dashboard) as client:
        assert client.get(f"/runs/{run_id}").json()["status"] == "cancelled"


def test_a_key_of_another_sandbox_sees_none_of_it(
    browser: Browser, context: BrowserContext, dashboard: Dashboard
) -> None:
    other = login(context, dashboard.other_owner)
    expect(other.locator("header .who")).to_contain_text("other (owner)")
    expect(other.locator("#runs-empty")).to_be_visible()
    expect(other.locator("table#runs tbody tr")).to_have_count(0)

    owners = browser.new_context(base_url=dashboard.url)
    try:
        watcher = owners.new_page()
        watcher.goto("/runs")  # the local owner of default, logged in by itself
        with api(dashboard) as client:
            run_id = client.post("/agents/support/test", json={"event_payload": {}}).json()[
                "run_id"
            ]
        expect(row(watcher, run_id).locator('[data-col="status"]')).to_have_text("succeeded")
    finally:
        owners.close()
    expect(other.locator("table#runs tbody tr")).to_have_count(0)

    other.goto("/agents")
    expect(other.get_by_text("No agents in this sandbox yet")).to_be_visible()
    for path in (f"/runs/{dashboard.runs['support'].run_id}", "/agents/support"):
        response = other.goto(path)
        assert response is not None and response.status == 404
        expect(other.get_by_role("heading", name="Not found")).to_be_visible()
    status = other.evaluate(
        "url => fetch(url).then(r => r.status)",
        f"/api/v1/sandboxes/default/runs/{run_id}/stream",
    )
    assert status == 404
    usage = other.goto("/usage")
    assert usage is not None and usage.status == 200
    expect(other.locator("table.spenders")).to_have_count(0)


def test_the_agents_page_and_an_agent_show_settings_catalog_and_triggers_with_fires(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = login(context, dashboard.owner)
    page.get_by_role("link", name="Agents").click()
    support = page.locator("table.agents tbody tr").filter(
        has=page.get_by_role("link", name="support", exact=True)
    )
    expect(support.locator("td").nth(4)).to_have_text("1")
    expect(support.locator("td").nth(5)).to_have_text("2")
    expect(page.locator("table.agents tbody tr")).to_have_count(6)
    screenshot(page, "agents.png")

    page.get_by_role("link", name="support", exact=True).first.click()
    expect(page.get_by_role("heading", name="Agent support")).to_be_visible()
    triggers = page.locator("table.triggers tbody tr")
    expect(triggers).to_have_count(1)
    expect(triggers).to_contain_text("orders-hook")
    expect(triggers.locator("td").nth(5)).to_have_text("2")
    expect(page.locator("table.catalog")).to_contain_text("json_extract")
    expect(page.locator(".fragment")).to_have_attribute("aria-busy", "false")

    editor = page.get_by_label("Event payload (JSON)")
    editor.fill('{"order_id": ')
    expect(page.locator("#payload-state")).to_contain_text("Not valid JSON")
    expect(page.get_by_role("button", name="Fire test run")).to_be_disabled()
    editor.fill('{"order_id": "A-2024"}')
    expect(page.get_by_role("button", name="Fire test run")).to_be_enabled()
    page.get_by_role("button", name="Format JSON").click()
    expect(editor).to_have_value('{\n  "order_id": "A-2024"\n}')
    page.get_by_role("button", name="Fire test run").click()
    expect(page.locator("#fire-status")).to_contain_text("succeeded")
    expect(page.locator("#fire-timeline pre.result")).to_contain_text("A-2024")
    screenshot(page, "agent.png")


def test_the_usage_page_charts_tokens_by_agent_with_top_spenders_and_runaways(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = login(context, dashboard.owner)
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    chart = page.get_by_role("img", name=re.compile("Tokens"))
    expect(chart.locator("rect").first).to_be_attached()
    expect(page.locator(".chart .legend").first).to_contain_text("support")
    spender = page.locator("table.spenders tbody tr").filter(
        has=page.get_by_role("link", name="support", exact=True)
    )
    expect(spender).to_contain_text("support")
    expect(spender).to_contain_text("runaway")
    expect(page.locator(".flags")).to_contain_text("over its threshold")
    expect(page.locator("table.spenders")).to_contain_text("$")
    screenshot(page, "usage.png")

    page.get_by_label("Window").select_option("7d")
    expect(page).to_have_url(re.compile(r"window=7d"))


@pytest.mark.parametrize("path", ["/runs", "/agents", "/agents/support", "/usage"])
def test_every_page_has_one_main_heading_and_labelled_controls(
    context: BrowserContext, path: str
) -> None:
    page = context.new_page()
    page.goto(path)
    expect(page.locator("h1")).to_have_count(1)
    unlabelled = page.locator("select, input:not([type=hidden]), textarea").evaluate_all(
        "nodes => nodes.filter(n => !(n.labels && n.labels.length)"
        " && !n.getAttribute('aria-label')).map(n => n.outerHTML)"
    )
    assert unlabelled == []
    headers = page.locator("table thead th").evaluate_all(
        "nodes => nodes.filter(n => n.getAttribute('scope') !== 'col').length"
    )
    assert headers == 0
