"""``cairn usage …``: tokens, runs and estimated cost over a window, and runaway agents.

``cairn usage [--since 24h] [--by agent|trigger|model|hour] [--agent] [--trigger]`` is the
report (a table with a sparkline of tokens per hour for each row, or ``--json``); its
subcommands manage per-agent thresholds (``threshold``), list the agents over them
(``runaways``), pause the triggers of those that asked for it (``enforce``, cron-friendly)
and show why earlier enforcements paused what they paused (``enforcements``).
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

import click

from cairn.cli.context import CliContext, output, pass_cli, print_json
from cairn.domain.usage import USAGE_BY, format_micros
from cairn.errors import UsageError

BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 48
"""At most this many characters per sparkline: longer series are summed into wider bins."""


def compact(series: list[int], width: int = SPARK_WIDTH) -> list[int]:
    """``series`` summed into at most ``width`` consecutive bins of equal size (the last may
    be shorter), so a 30-day window still fits a terminal."""
    if len(series) <= width:
        return list(series)
    size = math.ceil(len(series) / width)
    return [sum(series[i : i + size]) for i in range(0, len(series), size)]


def spark(value: int, peak: int) -> str:
    """One bar for ``value`` against ``peak``: blank for 0, else ▁ (up to an eighth) to █."""
    if value <= 0 or peak <= 0:
        return " "
    return BARS[min(max(math.ceil(value * len(BARS) / peak), 1), len(BARS)) - 1]


def sparkline(series: list[int], width: int = SPARK_WIDTH) -> str:
    """A bar per point of ``series`` (compacted to ``width``), scaled to its own peak; hours
    without tokens are blank, so "stopped" and "quiet" look different."""
    points = compact(series, width)
    peak = max(points, default=0)
    return "".join(spark(value, peak) for value in points)


def _cost(row: dict[str, Any]) -> str:
    cost = row["cost_micros"]
    mark = "*" if row["unpriced_runs"] else ""
    if cost is None:
        return "unpriced*" if row["runs"] else "-"
    return f"${format_micros(cost)}{mark}"


def _label(by: str, key: str | None) -> str:
    if key is not None:
        return key.replace("T", " ")[:16] + " UTC" if by == "hour" else key
    return "(no trigger: manual, test, one-shot)" if by == "trigger" else "(none)"


def _when(iso: str) -> str:
    return iso.replace("T", " ")[:16]


def _counts(row: dict[str, Any]) -> list[str]:
    """A row's runs, tokens in and out, and estimated cost, as the report's cells."""
    return [f"{row['runs']:,}", f"{row['tokens_in']:,}", f"{row['tokens_out']:,}", _cost(row)]


def usage_table(report: dict[str, Any], since: str) -> None:
    """The report for people: a row per group with its sparkline, then the totals."""
    from cairn.cli.render import Table, console

    by = report["by"]
    scope = "".join(
        f", {name} {report[field]}"
        for name, field in (("agent", "agent"), ("trigger", "trigger_id"))
        if report[field]
    )
    console.print(
        f"[bold]usage[/] over the last {since} ({_when(report['since'])} to "
        f"{_when(report['until'])} UTC), by {by}{scope}"
    )
    rows = report["rows"]
    totals = report["totals"]
    if not totals["runs"]:
        console.print("[dim]no runs in this window[/]")
        return
    per = "tokens" if by == "hour" else "tokens per hour"
    table = Table(by, "runs", "tokens in", "tokens out", "est. cost", per)
    peak = max((row["tokens"] for row in rows), default=0)
    for row in rows:
        line = spark(row["tokens"], peak) if by == "hour" else sparkline(row["series"])
        table.add_row(_label(by, row["key"]), *_counts(row), line)
    table.add_section()
    table.add_row("[bold]total[/]", *_counts(totals), sparkline(totals["series"]))
    console.print(table)
    if totals["unpriced_runs"]:
        console.print(
            f"* {totals['unpriced_runs']:,} runs have a model with no price, so their cost is "
            "not included: add it to the price table ($CAIRN_HOME/prices.json)"
        )


@click.group(invoke_without_command=True)
@click.option("--agent", help="Only this agent (slug).")
@click.option("--trigger", "trigger_id", help="Only runs fired by this trigger id.")
@click.option("--since", default="24h", show_default=True, help="Window up to now: 90m, 7d.")
@click.option("--by", type=click.Choice(USAGE_BY), default="agent", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@click.pass_context
def usage(
    ctx: click.Context,
    agent: str | None,
    trigger_id: str | None,
    since: str,
    by: str,
    as_json: bool,
) -> None:
    """Tokens in and out, runs and estimated cost over a window, with tokens per hour.

    Subcommands set per-agent thresholds and catch runaway agents (``cairn usage`` alone is
    the report: a group that runs without a subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    cli: CliContext = ctx.obj
    report = cli.call("get_usage", since=since, by=by, agent=agent, trigger_id=trigger_id)
    if as_json:
        print_json(report)
        return
    usage_table(report, since)


def parse_cost(text: str) -> int:
    """``1.50`` (currency units) → ``1500000`` micro-units, exactly; at most 6 decimals."""
    try:
        amount = Decimal(text.strip().lstrip("$"))
    except InvalidOperation:
        raise UsageError(f"cost {text!r} is not a number: use e.g. 1.50") from None
    micros = amount * 1_000_000
    if not amount.is_finite() or amount <= 0 or micros != micros.to_integral_value():
        raise UsageError(f"cost {text!r} must be above 0 with at most 6 decimals, e.g. 1.50")
    return int(micros)


def _threshold_line(data: dict[str, Any]) -> str:
    limits = []
    if data["tokens_per_hour"] is not None:
        limits.append(f"{data['tokens_per_hour']:,} tokens/hour")
    if data["cost_micros_per_hour"] is not None:
        limits.append(f"${format_micros(data['cost_micros_per_hour'])}/hour")
    action = "pauses its triggers" if data["pause_triggers"] else "flags only"
    return f"{data['agent_slug']}: {' or '.join(limits)} ({action})"


@usage.command("threshold")
@click.argument("slug", required=False)
@click.option("--tokens-per-hour", type=click.IntRange(min=1), help="Tokens in + out per hour.")
@click.option("--cost-per-hour", help="Estimated cost per hour, e.g. 1.50.")
@click.option(
    "--pause/--no-pause",
    "pause",
    default=False,
    help="When enforced (cairn usage enforce), pause the agent's triggers.",
)
@click.option("--clear", is_flag=True, help="Stop watching the agent.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def threshold(
    cli: CliContext,
    slug: str | None,
    tokens_per_hour: int | None,
    cost_per_hour: str | None,
    pause: bool,
    clear: bool,
    as_json: bool,
) -> None:
    """Set SLUG's limits per hour (replacing earlier ones), show them, or --clear them.
    Without SLUG, list every agent's threshold."""
    setting = tokens_per_hour is not None or cost_per_hour is not None
    if slug is None:
        if setting or clear:
            raise UsageError("name the agent: cairn usage threshold SLUG --tokens-per-hour N")
        found = cli.call("list_thresholds")
        lines = [_threshold_line(data) for data in found] or [
            "no thresholds: set one with cairn usage threshold SLUG --tokens-per-hour N"
        ]
    elif clear:
        if setting:
            raise UsageError("--clear removes the threshold: give it without limits")
        found = cli.call("delete_threshold", slug=slug)
        lines = [f"{slug}: " + ("threshold cleared" if found["cleared"] else "had none")]
    else:
        if setting:
            body = {
                "tokens_per_hour": tokens_per_hour,
                "cost_micros_per_hour": parse_cost(cost_per_hour) if cost_per_hour else None,
                "pause_triggers": pause,
            }
            found = cli.call("put_threshold", slug=slug, body=body)
        else:
            found = cli.call("get_threshold", slug=slug)
        lines = [
            f"{slug}: no threshold (set one with --tokens-per-hour or --cost-per-hour)"
            if found is None
            else ("set " if setting else "") + _threshold_line(found)
        ]
    if as_json:
        print_json(found)
    for line in [] if as_json else lines:
        click.echo(line)


def _print_flags(flags: list[dict[str, Any]]) -> None:
    if not flags:
        click.echo("no agent is over its threshold in the last hour")
    for flag in flags:
        click.echo(flag["message"])
        if flag["paused_trigger_ids"]:
            click.echo(f"  paused: {', '.join(flag['paused_trigger_ids'])}")


@usage.command("runaways")
@output(_print_flags)
@pass_cli
def runaways(cli: CliContext) -> Any:
    """Agents over their threshold in the last hour (changes nothing)."""
    return cli.call("list_runaways")


def _enforced(flags: list[dict[str, Any]]) -> None:
    if not flags:
        click.echo("nothing to enforce: no agent with --pause is over its threshold")
        return
    _print_flags(flags)
    if not any(flag["paused_trigger_ids"] for flag in flags):
        click.echo("no active trigger to pause (already paused, or fired by hand)")


@usage.command("enforce")
@output(_enforced)
@pass_cli
def enforce(cli: CliContext) -> Any:
    """Pause the active triggers of runaway agents whose threshold has --pause, and record
    why (see 'cairn usage enforcements'). Safe to run from cron."""
    return cli.call("enforce")


def _enforcement_lines(found: list[dict[str, Any]]) -> None:
    if not found:
        click.echo("no enforcement has paused a trigger")
    for record in found:
        click.echo(
            f"{_when(record['enforced_at'])} UTC  {record['agent_slug']}: {record['reason']}"
        )


@usage.command("enforcements")
@click.option("--agent", help="Only this agent (slug).")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 500), help="Rows at most."
)
@output(_enforcement_lines)
@pass_cli
def enforcements(cli: CliContext, agent: str | None, limit: int) -> Any:
    """Past enforcements that paused triggers, newest first, with the reason."""
    return cli.call("list_enforcements", agent=agent, limit=limit)


@usage.command("rollup")
@click.option("--rebuild", is_flag=True, help="Recompute it from every run, from scratch.")
@pass_cli
def rollup(cli: CliContext, rebuild: bool) -> None:
    """Bring the hourly usage rollup up to date ('--rebuild': from scratch). Usage is exact
    either way; the rollup only makes long windows fast. A maintenance command: it runs on
    the machine that holds the ledger ('cairn serve' keeps it up to date by itself)."""
    from cairn.services.usage import rebuild_rollup, roll_up_pending

    if cli.remote:
        raise UsageError("rebuild the rollup where the ledger is: unset CAIRN_URL and pass --db")
    if rebuild:
        count = rebuild_rollup(cli.app)
        click.echo(f"rebuilt the hourly usage rollup from {count:,} finished runs")
    else:
        count = roll_up_pending(cli.app)
        click.echo(f"added {count:,} finished runs to the hourly usage rollup")
