"""``cairn status``: the backlog, the workers alive, the oldest queued run."""

from __future__ import annotations

import json

import click

from cairn.cli.context import CliContext, pass_cli
from cairn.cli.export import telemetry_line


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def status(cli: CliContext, as_json: bool) -> None:
    """Runs queued and running in the sandbox, and every worker with its last heartbeat."""
    found = cli.call("get_status")
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(
        f"sandbox {found['sandbox_id']}: {found['queued']} queued, {found['running']} running "
        f"(executor {found['executor']}, backlog limit {found['max_backlog']}, "
        f"lease {found['lease_s']:g} s)"
    )
    if found["oldest_queued_run_id"]:
        click.echo(
            f"oldest queued: {found['oldest_queued_run_id']} "
            f"({found['oldest_queued_age_s']:.1f} s ago)"
        )
    telemetry = found.get("telemetry")
    if telemetry is not None:
        click.echo(telemetry_line(telemetry))
    telemetry = found.get("telemetry")
    if telemetry is not None:
        click.echo(telemetry_line(telemetry))
    alive = [w for w in found["workers"] if w["alive"]]
    click.echo(f"workers alive: {len(alive)}")
    for worker in found["workers"]:
        state = "alive" if worker["alive"] else ("stopped" if worker["stopped_at"] else "silent")
        click.echo(
            f"  {worker['worker_id']}  {state:7}  {worker['running']}/{worker['concurrency']} "
            f"running  last heartbeat {worker['heartbeat_at']}"
        )
