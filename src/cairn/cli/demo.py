"""``cairn demo``: load the demo sandbox and say what to try next."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cairn.cli.context import CliContext, pass_cli, run_async, server_is_ours
from cairn.errors import UsageError

if TYPE_CHECKING:
    from cairn.services.demo import DemoSummary


@click.command()
@pass_cli
def demo(cli: CliContext) -> None:
    """Load the demo sandbox (example agents, sources and runs) into the ledger on this
    machine and print what to try next. With CAIRN_URL, only when that server runs from
    this CAIRN_HOME (it then sees the demo at once); another server is refused: start it
    with 'cairn serve --demo' instead."""
    from cairn.services.demo import load_demo

    if cli.url:
        _check_same_ledger(cli.url)
    print_summary(run_async(load_demo, cli.app))


def _check_same_ledger(url: str) -> None:
    """Refuse to load the demo "into" a server whose ledger is not this machine's."""
    from cairn.config import default_home
    from cairn.services.local_identity import read_identity

    secret = read_identity(default_home())
    if secret is None or not server_is_ours(url, secret):
        raise UsageError(
            f"cairn demo loads the ledger on this machine, and {url} does not run from this "
            "CAIRN_HOME: start that server with 'cairn serve --demo', or unset CAIRN_URL"
        )


def print_summary(summary: DemoSummary) -> None:
    """What the demo loaded and what to try next."""
    from cairn.cli.render import console

    console.print(f"[bold]Cairn demo loaded[/] into sandbox '{summary.sandbox}'.")
    for run in summary.runs:
        console.print(f"  {run.run_id}  {run.agent_slug:<9} {run.status:<10} outcome {run.outcome}")
    console.print(
        f"""
Try next, in another terminal (the demo lives in sandbox '{summary.sandbox}'):
  source .venv/bin/activate && export CAIRN_SANDBOX={summary.sandbox}
  cairn agent list
  cairn agent runs support                 # did it work?
  cairn runs show {summary.runs[0].run_id}   # the whole row and trace
  cairn agent tools triage                 # why does triage do nothing? (stale allowlist)
  cairn agent tools reporter               # a source that is down is skipped, with the reason
  cairn agent test support --event-payload '{{"order_id": "A-1003"}}'
  cairn source list
  cairn agent runs support --follow        # live; fire from a third terminal:
  cairn agent fire support --event-payload '{{"order_id": "A-1002"}}'
"""
    )
