"""``cairn runs …``."""

from __future__ import annotations

import click

from cairn.cli.context import CliContext, pass_cli, print_json


@click.group()
def runs() -> None:
    """Inspect and prune runs in the ledger."""


@runs.command("show")
@click.argument("run_id")
@click.option("--events/--no-events", default=False, help="Also list the run's events.")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def show(cli: CliContext, run_id: str, events: bool, as_json: bool) -> None:
    """The whole row of RUN_ID: tool calls, output, error and the tool-resolution trace."""
    from cairn.services.runs import get_run, get_run_events

    run = get_run(cli.app, cli.sandbox, run_id)
    run_events = get_run_events(cli.app, cli.sandbox, run_id) if events or as_json else None
    if as_json:
        print_json(run.to_dict() | {"events": [e.to_dict() for e in run_events or []]})
        return
    from cairn.cli.render import run_detail

    run_detail(run, run_events)


@runs.command("prune")
@click.option(
    "--older-than", help="Delete finished runs older than this (e.g. 30d); default: retention."
)
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def prune(cli: CliContext, older_than: str | None, as_json: bool) -> None:
    """Delete old finished runs and their events (live runs are never pruned)."""
    from cairn.durations import parse_duration
    from cairn.services.runs import prune_runs

    age = parse_duration(older_than) if older_than else None
    deleted = prune_runs(cli.app, age)
    if as_json:
        print_json({"deleted": deleted})
    else:
        click.echo(f"deleted {deleted} runs")
