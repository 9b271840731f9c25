"""``cairn source webhook …`` and ``cairn source schedule …``: sources that emit events."""

from __future__ import annotations

import os

import click

from cairn.cli.context import CliContext, pass_cli, print_json


@click.group()
def webhook() -> None:
    """Webhook sources: your systems POST signed events to Cairn (docs/webhooks.md)."""


@webhook.command("add")
@click.argument("label")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def add(cli: CliContext, label: str, as_json: bool) -> None:
    """A webhook source LABEL: prints its URL and signing secret (shown once)."""
    made = cli.request("POST", "/sources/webhooks", json={"label": label})
    base = (os.environ.get("CAIRN_PUBLIC_URL") or cli.url or "http://127.0.0.1:8765").rstrip("/")
    made["url"] = base + made["path"]
    if as_json:
        print_json(made)
        return
    click.echo(f"added webhook source {label} ({made['source']['source_id']})")
    click.echo(f"URL:            {made['url']}")
    click.echo(f"signing secret: {made['signing_secret']}   (shown once; keep it secret)")
    click.echo("sign each POST: X-Cairn-Timestamp + X-Cairn-Signature (docs/webhooks.md)")


@click.group()
def schedule() -> None:
    """Schedule sources: cron expressions that emit ``schedule.tick`` events."""


@schedule.command("add")
@click.argument("label")
@click.option("--cron", required=True, help="Five-field cron expression, e.g. '0 2 * * *'.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def add_schedule(cli: CliContext, label: str, cron: str, timezone: str, as_json: bool) -> None:
    """A schedule source LABEL; bind triggers to it with --event-type schedule.tick."""
    made = cli.request(
        "POST", "/sources/schedules", json={"label": label, "cron": cron, "timezone": timezone}
    )
    if as_json:
        print_json(made)
    else:
        click.echo(f"added schedule source {label} ({made['source_id']}): {cron} {timezone}")
