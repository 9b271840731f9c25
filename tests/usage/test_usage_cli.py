"""``cairn usage``: the table with its sparklines, ``--json``, the thresholds and enforcement
subcommands, and one-line errors for bad input."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from cairn.cli.usage import compact, parse_cost, sparkline
from cairn.errors import UsageError
from tests.cli.conftest import Cli

SCRIPT = json.dumps(
    {"turns": [{"text": "ok", "usage": {"tokens_in": 1000, "tokens_out": 200}}]}
)  # 1,000 x 2 + 200 x 10 = 4,000 micro-units a run at the test prices


def make_agents(cli: Cli, fires: int = 3) -> None:
    for slug, model in (("support", "priced-1"), ("triage", "scripted-1")):
        made = cli(
            "agent", "create", slug, "--prompt", "p", "--tool-sources", "[]",
            "--model", model, "--script", SCRIPT,
        )  # fmt: skip
        assert made.exit_code == 0, made.stderr
    for _ in range(fires):
        assert cli("agent", "test", "support", "--event-payload", "{}").exit_code == 0
    assert cli("agent", "test", "triage", "--event-payload", "{}").exit_code == 0


def test_sparkline_scales_each_series_to_its_peak_and_leaves_empty_hours_blank() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7, 8]) == " ▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "███"
    assert sparkline([0, 0]) == "  "
    assert sparkline([1, 1000]) == "▁█"  # tiny but not nothing
    assert sparkline([]) == ""
    assert compact(list(range(720))) == [sum(range(i, i + 15)) for i in range(0, 720, 15)]
    assert len(sparkline([1] * 720)) == 48


def test_costs_are_parsed_exactly_into_micro_units() -> None:
    assert parse_cost("1.50") == 1_500_000
    assert parse_cost("$0.000001") == 1
    for bad in ("abc", "0", "-1", "0.0000001", "nan"):
        with pytest.raises(UsageError):
            parse_cost(bad)


def test_usage_table_shows_each_agent_with_totals_cost_and_a_sparkline(cli: Cli) -> None:
    make_agents(cli)

    shown = cli("usage", "--since", "24h")

    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "usage over the last 24h" in lines[0] and "by agent" in lines[0]
    support = next(line for line in lines if "support" in line)
    triage = next(line for line in lines if "triage" in line)
    total = next(line for line in lines if "total" in line)
    assert "3,000" in support and "600" in support and "$0.0120" in support
    assert support.rstrip(" │|").endswith("█")  # all of it in the last hour
    assert "$0.0000" in triage  # scripted-1 is priced at 0: free, not unknown
    assert "4,000" in total and "$0.0120" in total


def test_usage_json_is_the_report(cli: Cli) -> None:
    make_agents(cli)

    report = cli("usage", "--json", "--by", "model").json()

    assert report["by"] == "model"
    assert [(r["key"], r["runs"], r["cost_micros"]) for r in report["rows"]] == [
        ("scripted:priced-1", 3, 12_000),
        ("scripted:scripted-1", 1, 0),
    ]
    assert report["totals"]["tokens"] == 4 * 1200
    assert len(report["totals"]["series"]) == 25 and report["totals"]["series"][-1] == 4800


def test_usage_filters_and_other_groupings_from_the_cli(cli: Cli) -> None:
    make_agents(cli, fires=2)

    only = cli("usage", "--agent", "triage", "--json").json()
    hours = cli("usage", "--by", "hour", "--since", "3h")
    triggers = cli("usage", "--by", "trigger")

    assert [(r["key"], r["runs"]) for r in only["rows"]] == [("triage", 1)]
    assert hours.exit_code == 0 and hours.stdout.count(" UTC ") == 4  # clock hours touched
    assert "(no trigger: manual, test, one-shot)" in triggers.stdout


def test_an_empty_window_says_so(cli: Cli) -> None:
    shown = cli("usage")
    assert shown.exit_code == 0 and "no runs in this window" in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "invalid duration 'yesterday'"),
        (("--since", "0h"), "must be longer than 0"),
        (("--by", "day"), "'day' is not one of 'agent', 'trigger', 'model', 'hour'"),
        (("--agent", "nobody"), "no agent 'nobody'"),
        (("threshold", "support", "--cost-per-hour", "abc"), "cost 'abc' is not a number"),
        (("threshold", "--tokens-per-hour", "5"), "name the agent"),
    ],
)
def test_bad_usage_input_is_one_line_and_exit_2(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    make_agents(cli, fires=0)

    failed = cli("usage", *args)

    assert failed.exit_code == 2
    assert failed.stdout == ""
    assert failed.stderr.count("\n") == 1 and message in failed.stderr


def test_threshold_runaways_enforce_and_enforcements_from_the_cli(cli: Cli) -> None:
    make_agents(cli)
    assert cli("source", "webhook", "add", "gh").exit_code == 0
    trigger = cli("agent", "trigger", "create", "support", "--source", "gh", "--json").json()

    assert "no thresholds" in cli("usage", "threshold").stdout
    set_ = cli("usage", "threshold", "support", "--tokens-per-hour", "1000", "--pause")
    flag_only = cli("usage", "threshold", "triage", "--cost-per-hour", "1.50", "--json")
    listed = cli("usage", "threshold")
    runaways = cli("usage", "runaways", "--json").json()
    enforced = cli("usage", "enforce")
    again = cli("usage", "enforce")
    records = cli("usage", "enforcements")
    shown = cli("agent", "trigger", "show", trigger["trigger_id"], "--json").json()

    assert set_.stdout.strip() == "set support: 1,000 tokens/hour (pauses its triggers)"
    assert flag_only.json()["cost_micros_per_hour"] == 1_500_000
    assert "triage: $1.5000/hour (flags only)" in listed.stdout
    assert [(f["slug"], f["value"], f["threshold"]) for f in runaways] == [("support", 3600, 1000)]
    assert "agent support used 3,600 tokens" in enforced.stdout
    assert f"paused: {trigger['trigger_id']}" in enforced.stdout
    assert "no active trigger to pause" in again.stdout
    assert shown["status"] == "paused"
    assert f"cairn agent trigger resume {trigger['trigger_id']}" in records.stdout
    cleared = cli("usage", "threshold", "support", "--clear")
    assert cleared.stdout.strip() == "support: threshold cleared"
    assert "no threshold" in cli("usage", "threshold", "support").stdout


def test_every_command_in_the_cost_watch_docs_runs(cli: Cli) -> None:
    make_agents(cli)
    assert cli("source", "webhook", "add", "gh").exit_code == 0
    assert cli("agent", "trigger", "create", "support", "--source", "gh").exit_code == 0
    docs = Path(__file__).resolve().parents[2] / "docs" / "cost-watch.md"
    blocks = re.findall(r"```console\n(.*?)```", docs.read_text(encoding="utf-8"), re.S)
    commands = [line[len("$ cairn ") :] for b in blocks for line in b.splitlines() if line]

    assert len(commands) == 9
    for command in commands:
        done = cli(*shlex.split(command))
        assert done.exit_code == 0, (command, done.stderr)
