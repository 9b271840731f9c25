"""The dashboard's second pass (issue 17), one test per numbered point, in headless
Chromium against the served app of ``conftest`` (one server for the whole session).

Each test reads the page as the person debugging "it fires but does nothing" would: a
sandbox switcher and an empty state, a live run page that is true while it runs, partial
failures marked in the lists, sentences that read, a resolution step, a usage chart whose
labels fit, pages that fit a phone, a form that keeps its text without JavaScript, events
with every trigger's decision, a waterfall, signals in the lists, replay/pause/copy
actions, and compressed static files. Waits are Playwright's bounded assertions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ViewportSize, expect

from tests.web.conftest import Dashboard, screenshot
from tests.web.test_dashboard import api, row

expect.set_options(timeout=10_000)

PHONE: ViewportSize = {"width": 390, "height": 844}


def _trigger_runs(dashboard: Dashboard) -> list[dict[str, object]]:
    with api(dashboard) as client:
        runs: list[dict[str, object]] = client.get("/runs", params={"kind": "trigger"}).json()[
            "runs"
        ]
    return runs


# --- 1. sandbox switcher and empty state ---------------------------------------------------


def test_1_the_header_switches_sandbox_and_an_empty_sandbox_says_what_to_do(
    context: BrowserContext,
) -> None:
    page = context.new_page()
    page.goto("/runs")
    switch = page.get_by_label("Switch sandbox")
    expect(switch).to_have_value("default")
    switch.select_option("scratch")
    expect(page.locator("header .who")).to_contain_text("scratch (owner)")
    empty = page.locator(".empty-state")
    expect(empty).to_contain_text("has no agents yet")
    expect(empty).to_contain_text("cairn agent create")
    expect(empty.locator("button.copy").first).to_be_visible()
    screenshot(page, "runs-empty.png")
    empty.get_by_role("button", name="Open the demo sandbox").click()
    expect(page.locator("header .who")).to_contain_text("demo (owner)")
    page.get_by_label("Switch sandbox").select_option("default")
    expect(page.locator("header .who")).to_contain_text("default (owner)")
    expect(page.locator(".empty-state")).to_have_count(0)


def test_1_an_owner_of_another_sandbox_cannot_switch_out_of_it(
    browser: Browser, dashboard: Dashboard
) -> None:
    from tests.web.test_dashboard import login

    made = browser.new_context(base_url=dashboard.url)
    try:
        page = login(made, dashboard.other_owner)
        expect(page.locator("header .who")).to_contain_text("other (owner)")
        expect(page.get_by_label("Switch sandbox")).to_have_count(0)
        status = page.evaluate(
            """async () => {
              const csrf = document.querySelector('meta[name="cairn-csrf"]').content;
              const body = new URLSearchParams({csrf, sandbox: "default", next: "/runs"});
              return (await fetch("/sandbox", {method: "POST", body, redirect: "manual"})).status;
            }"""
        )
        assert status == 403
        page.goto("/runs")
        expect(page.locator("header .who")).to_contain_text("other (owner)")
    finally:
        made.close()


# --- 2. a running run's page is true and live ---------------------------------------------


def test_2_a_running_run_shows_live_tokens_tool_calls_and_trace_before_it_ends(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    with api(dashboard) as client:
        run_id = client.post("/agents/hanging/fire", json={"event_payload": {"title": "x"}}).json()[
            "run_id"
        ]
    page = context.new_page()
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-status")).to_contain_text("running")
    expect(page.locator("#run-tool-calls")).to_have_text("1")
    expect(page.locator("#run-tokens")).not_to_have_text(re.compile(r"^0 in · 0 out"))
    expect(page.locator("#run-cost")).not_to_have_text("unpriced")
    expect(page.locator("#trace-section .trace")).to_have_class(re.compile("verdict-ok"))
    expect(page.locator("#trace-section")).to_contain_text("clock_now")
    expect(page.locator("#waterfall-section .bar-tool")).to_contain_text("clock_now")
    thinking = page.locator("#timeline li.step-thinking")
    expect(thinking).to_contain_text("Model thinking")
    first = thinking.locator(".step-time").inner_text()
    expect(thinking.locator(".step-time")).not_to_have_text(first)
    expect(page.locator("#run-duration")).to_contain_text("so far")
    with api(dashboard) as client:
        row_now = client.get(f"/runs/{run_id}").json()
    assert row_now["status"] == "running", "seen before the end"
    assert row_now["tokens_in"] > 0 and len(row_now["tool_calls"]) == 1
    # the first turn's usage, exactly as the ledger has it (the second turn is still waiting)
    expect(page.locator("#run-tokens")).to_have_text(
        f"{row_now['tokens_in']:,} in · {row_now['tokens_out']:,} out"
    )
    screenshot(page, "run-live.png")

    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("#run-status")).to_contain_text("cancelled")
    # 4: a cancel the user asked for is not drawn as a red error
    expect(page.locator("#timeline li.step-cancelled")).to_contain_text("Cancelled")
    expect(page.locator("#timeline li.step-error")).to_have_count(0)
    expect(page.locator(".alert.bad")).to_have_count(0)
    expect(page.locator("#timeline li.step-thinking")).to_have_count(0)


# --- 3. partial failures are marked in the lists ------------------------------------------


def test_3_a_run_with_a_skipped_source_is_partial_in_the_runs_list(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = context.new_page()
    page.goto("/runs")
    reporter = row(page, dashboard.runs["reporter"].run_id)
    expect(reporter).to_have_attribute("data-health", "partial")
    expect(reporter.locator('[data-col="status"]')).to_contain_text("partial")
    expect(reporter.locator(".preview")).to_contain_text("crm skipped (unreachable)")
    expect(row(page, dashboard.runs["support"].run_id)).to_have_attribute("data-health", "ok")
    page.goto(f"/runs/{dashboard.runs['reporter'].run_id}")
    expect(page.locator(".run-badges")).to_contain_text("partial")


# --- 4. sentences -----------------------------------------------------------------------------


def test_4_outcomes_and_fixes_read_as_sentences_with_code_and_copy_buttons(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = context.new_page()
    page.goto(f"/runs/{dashboard.runs['triage'].run_id}")
    line = page.locator(".outcome-line")
    expect(line).to_have_text(
        "Outcome no tools available: no tool was advertised to the model (no sources, "
        "all skipped, or all filtered)."
    )
    explanation = page.locator(".explanation")
    expect(explanation.locator("code.copyable").first).to_be_visible()
    assert "`" not in explanation.inner_text(), "no markdown backticks left"
    expect(explanation.locator("button.copy").first).to_be_visible()

    page.goto(f"/runs/{dashboard.runs['broken'].run_id}")
    expect(page.locator("#run-cost")).not_to_have_text("unpriced")
    page.goto("/runs?since=15m&agent=slow&status=failed")
    expect(page.locator(".summary-strip")).to_be_visible()


# --- 5. tool resolution has a step of its own ---------------------------------------------


def test_5_the_timeline_starts_with_tool_resolution_and_turn_one_excludes_it(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = context.new_page()
    page.goto(f"/runs/{dashboard.runs['reporter'].run_id}")
    steps = page.locator("#timeline li.step")
    expect(steps.first).to_have_class(re.compile("step-resolve"))
    expect(steps.first).to_contain_text("Tool resolution")
    expect(steps.nth(1)).to_contain_text("Model turn 1")


# --- 6. usage chart labels and shares -----------------------------------------------------


def test_6_usage_axis_labels_fit_and_shares_are_of_the_total(
    context: BrowserContext,
) -> None:
    page = context.new_page()
    page.goto("/usage")
    ticks = page.locator("svg.chart-svg text.tick")
    expect(ticks.first).to_be_attached()
    clipped = page.locator("svg.chart-svg").first.evaluate(
        "svg => [...svg.querySelectorAll('text.tick')].filter(t => t.getBBox().x < 0)"
        ".map(t => t.textContent)"
    )
    assert clipped == []
    shares = page.locator("table.spenders meter").evaluate_all(
        "nodes => nodes.map(n => Number(n.value))"
    )
    assert len(shares) > 1 and sum(shares) <= 101 and max(shares) < 100
    # 4: a window without runs has nothing to price, so it does not say "unpriced"
    page.get_by_label("Switch sandbox").select_option("scratch")
    expect(page.locator("header .who")).to_contain_text("scratch (owner)")
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    expect(page.locator(".totals")).not_to_contain_text("unpriced")
    page.get_by_label("Switch sandbox").select_option("default")
    expect(page.locator("header .who")).to_contain_text("default (owner)")


# --- 7. phones ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phone(browser: Browser, dashboard: Dashboard) -> Iterator[BrowserContext]:
    """A 390 by 844 phone profile (the local owner), shared by the phone tests."""
    made = browser.new_context(base_url=dashboard.url, viewport=PHONE, is_mobile=True)
    made.set_default_timeout(10_000)
    try:
        yield made
    finally:
        made.close()


PHONE_PAGES = [
    "/runs",
    "/agents",
    "/agents/reporter",
    "/events",
    "/usage",
    "/login",
]


@pytest.mark.parametrize("path", PHONE_PAGES)
def test_7_no_page_scrolls_sideways_on_a_phone(phone: BrowserContext, path: str) -> None:
    page = phone.new_page()
    try:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= PHONE["width"], f"{path} is {wide}px wide"
    finally:
        page.close()


def test_7_run_and_event_pages_fit_a_phone_with_status_outcome_and_log_out_visible(
    phone: BrowserContext, dashboard: Dashboard
) -> None:
    page = phone.new_page()
    page.goto("/runs")
    first = page.locator("table#runs tbody tr").first
    for column in ("status", "outcome"):
        cell = first.locator(f'[data-col="{column}"]').bounding_box()
        assert cell and cell["x"] + cell["width"] <= PHONE["width"], f"{column} is cut off"
    expect(page.get_by_role("button", name="Log out")).to_be_in_viewport()
    screenshot(page, "phone-runs.png")
    for path in (f"/runs/{dashboard.runs['reporter'].run_id}", "/events"):
        page.goto(path)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= PHONE["width"], f"{path} is {wide}px wide"
    event_id = page.locator("table#events tbody tr").first.get_attribute("data-event-id")
    page.goto(f"/events/{event_id}")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.goto(f"/runs/{dashboard.runs['reporter'].run_id}")
    sources = page.locator(".trace table.sources")
    box, card = sources.bounding_box(), page.locator(".trace").bounding_box()
    assert box and card and box["x"] + box["width"] <= card["x"] + card["width"] + 1
    screenshot(page, "phone-run.png")
    page.close()


# --- 8. without JavaScript, invalid JSON keeps the typed payload ---------------------------


def test_8_without_javascript_invalid_json_comes_back_with_the_text_and_the_error(
    browser: Browser, dashboard: Dashboard
) -> None:
    made = browser.new_context(base_url=dashboard.url, java_script_enabled=False)
    try:
        page = made.new_page()
        page.goto("/agents/support")
        typed = '{"order_id": "A-77",'
        page.get_by_label("Event payload (JSON)").fill(typed)
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Fire test run").click()
        response = navigation.value
        assert response is not None and response.status == 400
        expect(page.get_by_role("heading", name="Agent support")).to_be_visible()
        expect(page.get_by_label("Event payload (JSON)")).to_have_value(typed)
        expect(page.get_by_role("alert")).to_contain_text("not JSON")
    finally:
        made.close()


# --- 9. events, decisions, why-not-fired, links both ways ---------------------------------


def test_9_events_show_rejections_and_every_trigger_decision_linked_both_ways(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = context.new_page()
    page.goto("/runs")
    page.get_by_role("link", name="Events").click()
    table = page.locator("table#events")
    expect(table.locator("tr.rejected")).to_contain_text("bad signature")
    filtered = table.locator("tbody tr").filter(has_text="filtered out")
    expect(filtered.first).to_contain_text('channel missing, wanted "C123"')
    expect(filtered.first).to_contain_text("reporter")
    expect(filtered.first).to_contain_text("dlv-1")
    expect(table.locator("tr.rejected")).to_contain_text("rejected: bad signature")
    screenshot(page, "events.png")

    fired = table.locator("tbody tr").filter(has_text="fired")
    fired.first.locator("a.mono").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"^Event evt_"))).to_be_visible()
    decision = page.locator("table#decisions tbody tr").first
    expect(decision).to_contain_text("fired")
    expect(page.locator(".explanation")).to_be_visible()
    screenshot(page, "event.png")
    event_url = page.url
    decision.locator('a[href^="/runs/run_"]').click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run run_"))).to_be_visible()
    expect(page.locator("#run-event")).to_be_visible()
    page.locator("#run-event").click()
    expect(page).to_have_url(event_url)

    page.goto("/events")
    table.locator("tbody tr").filter(has_text="dlv-1").locator("a.mono").first.click()
    expect(page.locator("#event-provider")).to_have_text("cairn")
    expect(page.locator("#event-delivery-id")).to_have_text("dlv-1")
    expect(page.locator("table#decisions")).to_contain_text('channel missing, wanted "C123"')

    page.goto("/agents/reporter")
    why = page.locator("#why-h")
    expect(why).to_have_text("Why didn't it fire?")
    expect(page.locator(".explanation").last).to_contain_text("channel")
    trigger_runs = _trigger_runs(dashboard)
    assert trigger_runs, "the support trigger fired"
    page.goto(f"/runs/{trigger_runs[0]['run_id']}")
    page.locator("#run-summary a", has_text="trg_").click()
    expect(page).to_have_url(re.compile(r"/agents/support#trigger-trg_"))


# --- 10. a waterfall replaces the tool-calls table -----------------------------------------


def test_10_the_run_page_draws_resolution_turns_and_tool_calls_on_one_time_axis(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = context.new_page()
    page.goto(f"/runs/{dashboard.runs['support'].run_id}")
    bars = page.locator(".waterfall li.bar")
    expect(bars.first).to_have_class(re.compile("bar-resolve"))
    expect(page.locator(".waterfall .bar-turn").first).to_contain_text("Model turn 1")
    expect(page.locator(".waterfall .bar-tool")).to_contain_text("json_extract")
    expect(page.locator(".waterfall .bar-total")).to_contain_text("tokens")
    expect(page.locator("table.calls")).to_have_count(0)
    widths = page.locator(".waterfall rect").evaluate_all(
        "rects => rects.map(r => Number(r.getAttribute('x')) + Number(r.getAttribute('width')))"
    )
    assert widths and all(0 < w <= 100.5 for w in widths)


# --- 11. signals in the lists ---------------------------------------------------------------


def test_11_the_runs_list_has_a_summary_cost_relative_times_and_previous(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = context.new_page()
    page.goto("/runs")
    strip = page.locator(".summary-strip")
    expect(strip).to_contain_text("Runs (last 24 hours)")
    failed = int(page.locator("#sum-failed").inner_text().rstrip("+").replace(",", ""))
    assert failed >= 1
    broken = row(page, dashboard.runs["broken"].run_id)
    expect(broken).to_have_attribute("data-health", "bad")
    expect(broken.locator(".preview")).to_contain_text("upstream said 500")
    expect(
        row(page, dashboard.runs["support"].run_id).locator('[data-col="cost"]')
    ).to_contain_text("$")
    created = row(page, dashboard.runs["support"].run_id).locator("time")
    expect(created).to_have_text(re.compile(r"ago$|^just now$"))
    expect(created).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d .* UTC$"))
    expect(page.locator(".pager")).to_contain_text("shown")

    page.get_by_label("Outcome").select_option("problems")
    expect(page).to_have_url(re.compile(r"outcome=problems"))
    healths = page.locator("table#runs tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.health)"
    )
    assert healths and set(healths) <= {"bad", "partial", "quiet"}
    expect(row(page, dashboard.runs["reporter"].run_id)).to_be_visible()
    expect(row(page, dashboard.runs["support"].run_id)).to_have_count(0)
    page.get_by_label("Outcome").select_option("no-op")
    expect(row(page, dashboard.runs["triage"].run_id)).to_be_visible()
    expect(row(page, dashboard.runs["broken"].run_id)).to_have_count(0)

    page.goto("/runs")
    newest = page.locator("table#runs tbody tr").first.get_attribute("data-run-id")
    page.goto(f"/runs?before={newest}")
    expect(row(page, str(newest))).to_have_count(0)
    page.get_by_role("link", name="Previous").click()
    expect(row(page, str(newest))).to_be_visible()


# --- 12. actions ------------------------------------------------------------------------------


def test_12_replay_with_an_edited_payload_pause_and_resume_health_and_a_prefilled_payload(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = context.new_page()
    original = dashboard.runs["support"].run_id
    page.goto(f"/runs/{original}")
    page.get_by_label(re.compile("^Payload")).fill('{"order_id": "A-4242"}')
    page.get_by_role("button", name="Replay as a test run").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run run_"))).to_be_visible()
    assert original not in page.url
    expect(page.locator("#run-summary")).to_contain_text(original)
    expect(page.locator("#run-status")).to_contain_text("succeeded")
    expect(page.locator("#timeline pre.result")).to_contain_text("A-4242")

    page.goto("/agents/support")
    expect(page.get_by_label("Event payload (JSON)")).to_have_value(re.compile("A-4242"))
    expect(page.locator(".health-strip a.tick").first).to_be_visible()
    expect(page.locator(".health-counts")).to_contain_text("clean")
    trigger = page.locator("table.triggers tbody tr").first
    trigger.get_by_role("button", name="Pause").click()
    expect(page.locator("table.triggers tbody tr").first).to_contain_text("paused")
    screenshot(page, "agent-actions.png")
    page.locator("table.triggers tbody tr").first.get_by_role("button", name="Resume").click()
    expect(page.locator("table.triggers tbody tr").first).to_contain_text("active")


def test_12_a_viewer_can_neither_pause_nor_switch_sandbox(
    browser: Browser, dashboard: Dashboard
) -> None:
    from tests.web.test_dashboard import login

    made = browser.new_context(base_url=dashboard.url)
    try:
        page = login(made, dashboard.viewer)
        page.goto("/agents/support")
        expect(page.locator("table.triggers button")).to_have_count(0)
        expect(page.get_by_label("Switch sandbox")).to_have_count(0)
        statuses = page.evaluate(
            """async (trigger) => {
              const csrf = document.querySelector('meta[name="cairn-csrf"]').content;
              const post = (url, body) => fetch(url, {method: "POST", body: new URLSearchParams(
                {csrf, ...body}), redirect: "manual"}).then(r => r.status);
              return [await post("/triggers/" + trigger + "/pause", {}),
                      await post("/sandbox", {sandbox: "other", next: "/runs"})];
            }""",
            str(page.locator("table.triggers tbody tr").first.get_attribute("id")).removeprefix(
                "trigger-"
            ),
        )
        assert statuses == [403, 403]
        expect(page.locator("table.triggers tbody tr").first).to_contain_text("active")
    finally:
        made.close()


# --- 13. compressed static files ------------------------------------------------------------


def test_13_the_script_and_stylesheet_are_served_gzipped(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = context.new_page()
    encodings: dict[str, str | None] = {}
    page.on(
        "response",
        lambda response: (
            encodings.__setitem__(
                response.url.split("?")[0].rsplit("/", 1)[-1],
                response.headers.get("content-encoding"),
            )
            if "/static/" in response.url
            else None
        ),
    )
    page.goto("/runs")
    page.wait_for_load_state("load")
    assert encodings.get("cairn.js") == "gzip" and encodings.get("cairn.css") == "gzip"
    plain = httpx.get(f"{dashboard.url}/static/cairn.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text.startswith("//")
    zipped = httpx.get(f"{dashboard.url}/static/cairn.js")  # httpx sends gzip and decodes
    assert zipped.headers["content-encoding"] == "gzip" and zipped.text == plain.text
    assert int(zipped.headers["content-length"]) < len(plain.content) / 2
