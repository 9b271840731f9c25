"""``cairn runs …``."""

from __future__ import annotations

import click

from cairn.cli.context import CliContext, parse_json_option, pass_cli, print_json


@click.group()
def runs() -> None:
    """Inspect, follow, cancel, replay and prune runs."""


@runs.command("show")
@click.argument("run_id")
@click.option("--events/--no-events", default=False, help="Also list the run's events.")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def show(cli: CliContext, run_id: str, events: bool, as_json: bool) -> None:
    """The whole row of RUN_ID: tool calls, output, error and the tool-resolution trace."""
    run = cli.request("GET", f"/runs/{run_id}")
    run_events = cli.request("GET", f"/runs/{run_id}/events") if events or as_json else None
    if as_json:
        print_json(run | {"events": run_events or []})
        return
    from cairn.cli.render import run_detail
    from cairn.domain.runs import event_from_dict, run_from_dict

    run_detail(
        run_from_dict(run),
        [event_from_dict(e) for e in run_events] if run_events is not None else None,
    )


@runs.command("follow")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@pass_cli
def follow(cli: CliContext, run_id: str, as_json: bool) -> None:
    """Stream RUN_ID's text and tool calls as they happen; exit 1 unless it succeeded."""
    from cairn.cli.render import follow_events

    cli.request("GET", f"/runs/{run_id}")  # a clear error for an unknown run
    status = follow_events(cli.transport.stream(f"/runs/{run_id}/stream"), as_json)
    if status != "succeeded":
        raise SystemExit(1)


@runs.command("cancel")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def cancel(cli: CliContext, run_id: str, as_json: bool) -> None:
    """Cancel a live run: it ends ``cancelled`` and keeps the events it had."""
    run = cli.request("POST", f"/runs/{run_id}/cancel")
    if as_json:
        print_json(run)
    else:
        click.echo(f"cancel requested for {run_id} (status {run['status']})")


@runs.command("replay")
@click.argument("run_id")
@click.option("--event-payload", "payload_json", help="An edited event, JSON (default: the run's).")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def replay(cli: CliContext, run_id: str, payload_json: str | None, as_json: bool) -> None:
    """Fire RUN_ID's agent again on the same event (or an edited one) as a test run."""
    from cairn.cli.agents import show_run

    payload = parse_json_option(payload_json, "--event-payload")
    run = cli.request("POST", f"/runs/{run_id}/replay", json={"event_payload": payload})
    show_run(run, as_json)
    if run["status"] != "succeeded":
        raise SystemExit(1)


@runs.command("prune")
@click.option(
    "--older-than", help="Delete finished runs older than this (e.g. 30d); default: retention."
)
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def prune(cli: CliContext, older_than: str | None, as_json: bool) -> None:
    """Delete old finished runs and their events (live runs are never pruned). A maintenance
    command: it runs on the machine that holds the ledger."""
    from cairn.durations import parse_duration
    from cairn.errors import UsageError
    from cairn.services.runs import prune_runs

    if cli.remote:
        raise UsageError("prune runs where the ledger is: unset CAIRN_URL and pass --db")
    age = parse_duration(older_than) if older_than else None
    deleted = prune_runs(cli.app, age)
    if as_json:
        print_json({"deleted": deleted})
    else:
        click.echo(f"deleted {deleted} runs")


@runs.command("explain")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def explain(cli: CliContext, run_id: str, as_json: bool) -> None:
    """Why RUN_ID did what it did, in plain English: the cause, the fix, and the run, event
    and trace fields each finding rests on."""
    from cairn.cli.doctor import show_explanation

    show_explanation(cli.request("GET", f"/runs/{run_id}/explain"), as_json)
