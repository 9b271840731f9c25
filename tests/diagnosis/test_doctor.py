"""``doctor`` scans without running anything: a healthy sandbox is ok; stale allowlists
against today's catalog, a server that is down now, paused and quiet triggers, agents whose
recent runs mostly fail or use no tools, and a runaway agent are each found with the fix."""

from __future__ import annotations

import pytest

from cairn.domain.diagnosis import DoctorReport, Finding
from cairn.errors import UsageError
from cairn.services.app import App
from cairn.services.diagnosis import doctor
from cairn.services.triggers import create_trigger, update_trigger
from cairn.services.usage import set_threshold
from cairn.services.webhooks import add_webhook_source
from tests.diagnosis.helpers import SANDBOX, add_http_source, fire, make_agent
from tests.mcp_servers import HttpServer

pytestmark = pytest.mark.anyio

ACTS = [{"tool_calls": [{"name": "clock_now"}]}, "Done."]


def about(report: DoctorReport, code: str, subject: str) -> Finding:
    """The one finding with ``code`` about ``subject``."""
    found = [f for f in report.findings if f.code == code and f.subject == subject]
    assert len(found) == 1, f"expected one {code!r} about {subject!r}, got {report.to_dict()}"
    return found[0]


async def test_a_healthy_sandbox_is_ok(app: App) -> None:
    await make_agent(app, ACTS, tool_allowlist=["clock_now"])
    await fire(app)
    report = await doctor(app, SANDBOX)
    assert report.ok
    assert report.findings == []
    assert report.checked["agents"] == 1
    assert report.checked["runs"] == 1


async def test_a_stale_allowlist_is_checked_against_todays_catalog(
    app: App, orders_server: HttpServer
) -> None:
    await add_http_source(app, "orders", orders_server.url)
    await make_agent(app, ACTS, slug="support", tool_allowlist=["clock_now", "orders_lookup"])
    await make_agent(app, ACTS, slug="billing", tool_allowlist=["orders_add"])
    report = await doctor(app, SANDBOX)
    assert not report.ok
    finding = about(report, "stale_allowlist", "support")
    assert finding.severity == "warning"  # clock_now still works
    assert "1 allowlist entry matches no real tool: 'orders_lookup'" in finding.cause
    assert "'orders_lookup' → 'orders_lookup_order'" in finding.fix
    assert (
        """cairn agent update support --tool-allowlist '["clock_now", "orders_lookup_order"]'"""
    ) in finding.fix
    assert finding.evidence["checked_against"] == "today's catalog"
    assert [f.subject for f in report.findings] == ["support"]


async def test_a_server_that_is_down_now_is_reported_once_with_the_agents_it_hits(
    app: App, free_tcp_port: int
) -> None:
    await add_http_source(app, "crm", f"http://127.0.0.1:{free_tcp_port}/mcp")
    await make_agent(app, ACTS, slug="support")
    await make_agent(app, ACTS, slug="billing", tool_sources=["builtin", "crm"])
    report = await doctor(app, SANDBOX)
    finding = about(report, "source_skipped", "crm")
    assert finding.severity == "error"
    assert f"MCP server 'crm' at http://127.0.0.1:{free_tcp_port}/mcp is down" in finding.cause
    assert "agents affected: billing and support" in finding.cause
    assert "Start it, then `cairn source test crm`" in finding.fix
    assert finding.evidence["agents"] == ["billing", "support"]
    assert finding.evidence["reason"] == "unreachable"


async def test_paused_and_quiet_triggers_are_reported(app: App) -> None:
    await make_agent(app, ACTS, slug="triage")
    add_webhook_source(app, SANDBOX, "github")
    paused = create_trigger(app, SANDBOX, "triage", "github", event_type_filter="issue.opened")
    update_trigger(app, SANDBOX, paused.trigger_id, status="paused")
    quiet = create_trigger(app, SANDBOX, "triage", "github")
    report = await doctor(app, SANDBOX, quiet_days=0)
    pause = about(report, "trigger_paused", paused.trigger_id)
    assert f"cairn agent trigger resume {paused.trigger_id}" in pause.fix
    silent = about(report, "trigger_quiet", quiet.trigger_id)
    assert "has not fired in 0 days (since it was created)" in silent.cause
    assert "no event has reached 'github' at all" in silent.cause
    assert "cairn agent why-not-fired triage" in silent.fix
    assert silent.evidence["fire_count"] == 0
    assert (await doctor(app, SANDBOX)).codes() == ["trigger_paused"]  # 7 days: not quiet


async def test_an_agent_whose_runs_mostly_fail_is_flagged(app: App) -> None:
    await make_agent(app, [{"error": {"message": "invalid x-api-key", "reason": "auth"}}])
    for _ in range(3):
        await fire(app)
    report = await doctor(app, SANDBOX, slug="support")
    finding = about(report, "runs_mostly_fail", "support")
    assert finding.cause == "3 of support's last 3 finished runs failed (model_error x3)."
    latest = finding.evidence["failed_run_ids"][0]
    assert f"cairn runs explain {latest}" in finding.fix


async def test_an_agent_whose_runs_mostly_use_no_tools_is_flagged(app: App) -> None:
    await make_agent(app, [{"text": ""}])
    for _ in range(3):
        await fire(app)
    report = await doctor(app, SANDBOX)
    finding = about(report, "runs_mostly_no_tools", "support")
    assert "3 of support's last 3 finished runs called no tool (model_chose_no_tool x3)" in (
        finding.cause
    )
    assert finding.evidence["outcomes"] == {"model_chose_no_tool": 3}


async def test_a_runaway_agent_is_flagged_with_its_usage(app: App) -> None:
    await make_agent(app, ACTS)
    set_threshold(app, SANDBOX, "support", tokens_per_hour=10)
    run = await fire(app)
    report = await doctor(app, SANDBOX)
    finding = about(report, "runaway_usage", "support")
    assert f"{run.usage.tokens_in + run.usage.tokens_out:,} tokens" in finding.cause
    assert "cairn usage --agent support --by hour" in finding.fix
    assert finding.evidence["metric"] == "tokens_per_hour"
    assert finding.evidence["threshold"] == 10


async def test_doctor_for_one_agent_looks_at_that_agent_only(app: App) -> None:
    await make_agent(app, ACTS, slug="support", tool_allowlist=["clok_now"])
    await make_agent(app, ACTS, slug="billing", tool_allowlist=["clock_now"])
    assert (await doctor(app, SANDBOX, slug="billing")).ok
    report = await doctor(app, SANDBOX, slug="support")
    finding = about(report, "stale_allowlist", "support")
    assert finding.severity == "error"
    assert "'clok_now' → 'clock_now'" in finding.fix


async def test_quiet_days_out_of_range_is_a_usage_error(app: App) -> None:
    with pytest.raises(UsageError, match="quiet_days 1e\\+06 is out of range: use 0 to 3650"):
        await doctor(app, SANDBOX, quiet_days=1e6)
