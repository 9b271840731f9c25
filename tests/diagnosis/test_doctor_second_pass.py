"""Doctor's false alarms and missed problems, each on a setup built here: a tool-less agent
is healthy; a trigger that filters out every event, tool errors in run after run, a lone
failed run are found; a problem fixed by a configuration change is no longer reported; and
tool errors name their real remedy (the allowed-hosts setting, an MCP server that died)."""

from __future__ import annotations

import pytest

from cairn.domain.diagnosis import DoctorReport, Finding
from cairn.services.agents import AgentChanges, update_agent
from cairn.services.app import App
from cairn.services.diagnosis import doctor, explain_run
from cairn.services.ingest import ingest
from cairn.services.triggers import create_trigger
from cairn.services.webhooks import add_webhook_source
from tests.diagnosis.helpers import ORDERS_TOKEN, SANDBOX, add_http_source, fire, make_agent, only
from tests.mcp_servers import serve_http

pytestmark = pytest.mark.anyio

CHATS = ["Hello! I only talk."]
FAILS = [{"error": "upstream exploded"}]
FORBIDDEN_HOST = [
    {"tool_calls": [{"name": "http_request", "arguments": {"url": "https://api.example.com/x"}}]},
    "Could not reach it.",
]


def codes(report: DoctorReport, subject: str) -> list[str]:
    return [f.code for f in report.findings if f.subject == subject]


def about(report: DoctorReport, code: str, subject: str) -> Finding:
    found = [f for f in report.findings if f.code == code and f.subject == subject]
    assert len(found) == 1, f"expected one {code!r} about {subject!r}, got {report.to_dict()}"
    return found[0]


async def test_an_agent_tool_less_by_choice_is_healthy(app: App) -> None:
    await make_agent(app, CHATS, slug="chatter", tool_sources=[])
    for _ in range(4):
        await fire(app, "chatter")

    report = await doctor(app, SANDBOX)

    assert report.ok, report.to_dict()
    assert codes(report, "chatter") == []
    assert report.checked["runs"] == 4


async def test_a_trigger_that_filters_out_every_event_is_found_without_lowering_quiet_days(
    app: App,
) -> None:
    await make_agent(app, CHATS, slug="sync", tool_sources=[])
    source = add_webhook_source(app, SANDBOX, "github").source
    trigger = create_trigger(app, SANDBOX, "sync", "github", filter_config={"action": "opened"})
    for action in ("closed", "edited", "closed"):
        await ingest(app, source, "issues", {"action": action})

    report = await doctor(app, SANDBOX)  # quiet_days 7: the trigger is hours old

    assert not report.ok
    finding = about(report, "trigger_filters_all", trigger.trigger_id)
    assert "filtered out all 3 of the events it received" in finding.cause
    assert "'action' = 'opened'" in finding.cause and "'closed'" in finding.cause
    assert finding.evidence["latest_decision"]["decision"] == "filtered_out"
    latest = finding.evidence["latest_decision"]["event_id"]
    assert f"cairn events explain {latest}" in finding.fix


async def test_tool_errors_in_every_run_are_found_and_the_fix_is_the_allowed_hosts_setting(
    app: App,
) -> None:
    await make_agent(app, FORBIDDEN_HOST, slug="fetcher", tool_sources=["builtin"])
    runs = [await fire(app, "fetcher") for _ in range(3)]
    assert {run.outcome for run in runs} == {"tool_errors"}
    assert runs[0].tool_calls[0].error_kind == "host_not_allowed"

    report = await doctor(app, SANDBOX)
    explained = explain_run(app, SANDBOX, runs[-1].run_id)

    finding = about(report, "runs_tool_errors", "fetcher")
    assert "3 of fetcher's last 3" in finding.cause and "http_request x3" in finding.cause
    assert finding.evidence["error_kinds"] == {"host_not_allowed": 3}
    errors = only(explained, "tool_errors")
    assert "CAIRN_HTTP_ALLOWED_HOSTS" in errors.fix and "'api.example.com'" in errors.fix
    assert "prompt is not the problem" in errors.fix
    assert errors.evidence["tool_calls"][0]["error_kind"] == "host_not_allowed"


async def test_a_lone_failed_run_is_reported(app: App) -> None:
    await make_agent(app, FAILS, slug="extractor", tool_sources=[])
    run = await fire(app, "extractor")

    report = await doctor(app, SANDBOX)

    finding = about(report, "latest_run_failed", "extractor")
    assert run.run_id in finding.cause and f"cairn runs explain {run.run_id}" in finding.fix
    assert not report.ok


async def test_runs_from_before_the_change_that_fixed_them_are_ignored(app: App) -> None:
    await make_agent(app, FAILS, slug="extractor", tool_sources=[])
    for _ in range(3):
        await fire(app, "extractor")
    before = await doctor(app, SANDBOX)
    assert "runs_mostly_fail" in codes(before, "extractor")

    # The fix: a new prompt and a script that works (a prompt change bumps the version).
    agent, _ = await update_agent(
        app,
        SANDBOX,
        "extractor",
        AgentChanges(system_prompt="Extract politely.", model_settings={"script": CHATS}),
    )
    assert agent.version == 2
    after_change = await doctor(app, SANDBOX)
    await fire(app, "extractor")
    after_a_good_run = await doctor(app, SANDBOX)

    assert codes(after_change, "extractor") == [] and after_change.ok
    assert codes(after_a_good_run, "extractor") == [] and after_a_good_run.ok


async def test_an_mcp_server_that_died_mid_call_is_said_so(app: App) -> None:
    script = [{"tool_calls": [{"name": "orders_crash", "arguments": {}}]}, "It broke."]
    await make_agent(app, script, slug="crasher", tool_sources=["orders"])
    with serve_http(ORDERS_TOKEN) as server:  # its own server: the call kills it
        await add_http_source(app, "orders", server.url)
        run = await fire(app, "crasher")
    assert run.tool_calls[0].error_kind == "server_lost", run.tool_calls

    errors = only(explain_run(app, SANDBOX, run.run_id), "tool_errors")

    assert "died or dropped it mid-call" in errors.fix and "'orders'" in errors.fix
    assert "may well pass" in errors.fix  # a later `source test` is no evidence of health


async def test_explaining_a_run_of_an_agent_over_its_threshold_says_what_it_costs(
    app: App,
) -> None:
    from cairn.services.usage import set_threshold

    big = {"turns": [{"text": "Chatting.", "usage": {"tokens_in": 4000, "tokens_out": 1000}}]}
    await make_agent(app, big, slug="chatty", tool_sources=[])
    await make_agent(app, big, slug="calm", tool_sources=[])
    runs = [await fire(app, "chatty") for _ in range(2)]
    calm = await fire(app, "calm")
    set_threshold(app, SANDBOX, "chatty", tokens_per_hour=8000)
    set_threshold(app, SANDBOX, "calm", tokens_per_hour=8000)

    explained = explain_run(app, SANDBOX, runs[-1].run_id)
    quiet = explain_run(app, SANDBOX, calm.run_id)

    finding = only(explained, "runaway_usage")
    assert "This run used 5,000 tokens (4,000 in, 1,000 out)" in finding.cause
    assert "10,000 tokens" in finding.cause and "8,000 tokens per hour" in finding.cause
    assert "cairn usage --agent chatty --by hour" in finding.fix
    assert "runaway_usage" not in quiet.codes()
