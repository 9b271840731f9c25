"""``cairn runs …``."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.context import (
    CliContext,
    confirm,
    option_set,
    output,
    parse_json_option,
    pass_cli,
    print_json,
)
from cairn.domain.runs import RUN_KINDS, RUN_STATUSES
from cairn.errors import UsageError


@click.group()
def runs() -> None:
    """List, inspect, follow, cancel, replay, explain and prune runs."""


run_filters = option_set(
    click.option(
        "--limit",
        default=20,
        show_default=True,
        type=click.IntRange(1, 1000),
        help="Runs per page.",
    ),
    click.option("--status", type=click.Choice(RUN_STATUSES), help="Only runs in this status."),
    click.option("--kind", type=click.Choice(RUN_KINDS), help="Only runs of this kind."),
    click.option("--trigger", "trigger_id", help="Only runs fired by this trigger id."),
    click.option("--since", metavar="AGE", help="Only runs newer than AGE, e.g. 24h, 7d."),
    click.option("--before", metavar="RUN_ID", help="Cursor: runs older than RUN_ID (next page)."),
)
"""The options that page and filter a listing of runs (``runs list``, ``agent runs``), given
to the command under the names of the listing operations' parameters."""


def failed(run: dict[str, Any]) -> bool:
    """Whether a run waited for did not succeed (the command then exits 1)."""
    return bool(run["status"] != "succeeded")


@runs.command("list")
@click.option("--agent", "slug", help="Only the runs of this agent.")
@run_filters
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON list.")
@pass_cli
def list_(cli: CliContext, /, slug: str | None, as_json: bool, **filters: Any) -> None:
    """Recent runs of every agent in the sandbox, newest first.

    \b
    Examples:
      cairn runs list --status failed --since 24h
      cairn runs list --kind oneshot --json
    """
    page = cli.call("list_runs", agent=slug, **filters)
    if as_json:
        print_json(page["runs"])
        return
    from cairn.cli.render import runs_table

    runs_table(page["runs"], filters["limit"], with_agent=True)


@runs.command("show")
@click.argument("run_id")
@click.option("--events/--no-events", default=False, help="Also list the run's events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def show(cli: CliContext, run_id: str, events: bool, as_json: bool) -> None:
    """The whole row of RUN_ID: tool calls, output, error and the tool-resolution trace.

    \b
    Examples:
      cairn runs show run_01j… --events
      cairn runs show run_01j… --json
    """
    run = cli.call("get_run", run_id=run_id)
    run_events = cli.call("get_events", run_id=run_id) if events or as_json else None
    if as_json:
        print_json(run | {"events": run_events or []})
        return
    from cairn.cli.render import run_detail

    run_detail(run, run_events)


@runs.command("follow")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@pass_cli
def follow(cli: CliContext, run_id: str, as_json: bool) -> None:
    """Stream RUN_ID's text and tool calls as they happen; exit 1 unless it succeeded.

    \b
    Examples:
      cairn runs follow run_01j…
      cairn runs follow run_01j… --json
    """
    from cairn.cli.render import follow_events

    cli.call("get_run", run_id=run_id)  # a clear error for an unknown run
    status = follow_events(cli.stream("stream_run", run_id=run_id), as_json)
    if status != "succeeded":
        raise SystemExit(1)


@runs.command("cancel")
@click.argument("run_id")
@output(lambda run: click.echo(f"cancel requested for {run['run_id']} (status {run['status']})"))
@pass_cli
def cancel(cli: CliContext, run_id: str) -> Any:
    """Cancel a live run: it ends 'cancelled' and keeps the events it had."""
    return cli.call("cancel_run", run_id=run_id)


@runs.command("replay")
@click.argument("run_id")
@click.option("--event-payload", "payload_json", help="An edited event, JSON (default: the run's).")
@output("render.run_detail", fails=failed)
@pass_cli
def replay(cli: CliContext, run_id: str, payload_json: str | None) -> Any:
    """Fire RUN_ID's agent again on the same event (or an edited one) as a test run."""
    payload = parse_json_option(payload_json, "--event-payload")
    return cli.call("replay_run", run_id=run_id, body={"event_payload": payload})


@runs.command("prune")
@click.option(
    "--older-than",
    metavar="AGE",
    help="Delete what is older than AGE (e.g. 30d, at least 1h); default: CAIRN_RETENTION_DAYS.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_cli
def prune(cli: CliContext, older_than: str | None, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Retention for the sandbox (--sandbox): delete its finished runs (with their events)
    and its received events (with their trigger decisions) older than AGE. Live runs are
    never pruned. A maintenance command: it runs on the machine that holds the ledger.

    \b
    Examples:
      cairn --sandbox demo runs prune --older-than 30d --dry-run
      cairn --sandbox demo runs prune --older-than 30d --yes
    """
    from cairn.durations import parse_duration
    from cairn.services.runs import prune_runs

    if cli.remote:
        raise UsageError("prune runs where the ledger is: unset CAIRN_URL and pass --db")
    age = parse_duration(older_than) if older_than else None
    counted = prune_runs(cli.app, cli.sandbox, age, dry_run=True)
    if not dry_run and (counted.runs or counted.events):
        confirm(
            f"delete {counted.runs} runs and {counted.events} events older than "
            f"{counted.older_than_s / 86400:g} days from sandbox {cli.sandbox!r}?",
            yes,
        )
        counted = prune_runs(cli.app, cli.sandbox, age)
    if as_json:
        print_json(
            {
                "deleted": 0 if dry_run else counted.runs,
                "runs": counted.runs,
                "events": counted.events,
                "dry_run": dry_run,
                "sandbox": cli.sandbox,
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {counted.runs} runs and {counted.events} events in sandbox {cli.sandbox}")


@runs.command("explain")
@click.argument("run_id")
@output("doctor.show_explanation")
@pass_cli
def explain(cli: CliContext, run_id: str) -> Any:
    """Why RUN_ID did what it did, in plain English: the cause, the fix, and the run, event
    and trace fields each finding rests on."""
    return cli.call("explain_run", run_id=run_id)
