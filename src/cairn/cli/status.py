"""``cairn status``: the backlog, the workers alive, the oldest queued run."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.context import CliContext, output, pass_cli
from cairn.cli.export import telemetry_line


def _show(found: dict[str, Any]) -> None:
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
    alive = [w for w in found["workers"] if w["alive"]]
    click.echo(f"workers alive: {len(alive)}")
    for worker in found["workers"]:
        state = "alive" if worker["alive"] else ("stopped" if worker["stopped_at"] else "silent")
        click.echo(
            f"  {worker['worker_id']}  {state:7}  {worker['running']}/{worker['concurrency']} "
            f"running  last heartbeat {worker['heartbeat_at']}"
        )


@click.command()
@output(_show)
@pass_cli
def status(cli: CliContext) -> Any:
    """Runs queued and running in the sandbox, and every worker with its last heartbeat."""
    return cli.call("get_status")
