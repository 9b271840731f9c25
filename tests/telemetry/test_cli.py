"""``cairn export otlp`` (backfill from the ledger) and ``cairn export status``."""

from __future__ import annotations

import pytest

from cairn.services.app import App
from cairn.services.runs import fire_agent
from tests.cli.conftest import Cli
from tests.runner.helpers import SANDBOX, make_agent
from tests.telemetry.receiver import Receiver


@pytest.mark.anyio
async def test_backfill_sends_past_runs_as_the_same_traces_a_live_export_sends(
    receiver: Receiver, app: App, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_agent(
        app,
        {"turns": [{"tool_calls": [{"name": "clock_now", "arguments": {}}]}, "Done."]},
        slug="clock",
        tool_allowlist=["clock_now"],
    )
    runs = [await fire_agent(app, SANDBOX, "clock", {"n": n}) for n in range(3)]
    assert app.runner.observer is None  # these ran with export off

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    done = cli("export", "otlp", "--since", "1h", "--json")

    assert done.exit_code == 0, done.stderr
    report = done.json()
    assert (report["runs"], report["runs_exported"], report["runs_dropped"]) == (3, 3, 0)
    spans = receiver.wait_for_spans(3 * 5)
    roots = {s.attributes["cairn.run.id"]: s for s in spans if s.parent_span_id == ""}
    assert set(roots) == {run.run_id for run in runs}
    for root in roots.values():
        tree = receiver.spans_of_trace(root.trace_id)
        assert sorted(s.name for s in tree) == [
            "cairn.resolve_tools",
            "chat scripted-1",
            "chat scripted-1",
            "execute_tool clock_now",
            "invoke_agent clock",
        ]
        chats = [s for s in tree if s.name.startswith("chat")]
        assert sorted(c.attributes["gen_ai.response.finish_reasons"][0] for c in chats) == [
            "end_turn",
            "tool_use",
        ]
    assert receiver.received.metrics == {}  # old runs are not counted as new


def test_backfill_without_an_endpoint_says_what_to_set(cli: Cli) -> None:
    done = cli("export", "otlp", "--since", "24h")
    assert done.exit_code == 2
    assert done.stderr.strip() == (
        "error: nowhere to send: set OTEL_EXPORTER_OTLP_ENDPOINT (see docs/observability.md)"
    )


def test_a_bad_window_is_one_line(
    cli: Cli, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    done = cli("export", "otlp", "--since", "yesterday")
    assert done.exit_code == 2
    assert "invalid duration 'yesterday'" in done.stderr


def test_status_says_export_is_off_when_it_is(cli: Cli) -> None:
    done = cli("export", "status")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith("OpenTelemetry export: off")
    assert cli("export", "status", "--json").json()["enabled"] is False
