"""``cairn source webhook …`` and ``cairn source schedule …``: sources that emit events."""

from __future__ import annotations

import os
from typing import Any

import click

from cairn.cli.context import CliContext, output, pass_cli, print_json


@click.group()
def webhook() -> None:
    """Webhook sources: your systems POST signed events to Cairn (docs/webhooks.md)."""


_PROVIDERS = ("cairn", "github", "stripe", "slack", "linear", "standard", "hmac")

_NEXT_STEP = {
    "cairn": "sign each POST: X-Cairn-Timestamp + X-Cairn-Signature (docs/webhooks.md)",
    "github": "GitHub: Settings → Webhooks → Add webhook: Payload URL = the URL, "
    "Content type application/json, Secret = the secret (docs/webhooks.md#github)",
    "stripe": "Stripe: add an endpoint with the URL, then paste its whsec_… secret: "
    "cairn source webhook rotate {label} --secret whsec_… (docs/webhooks.md#stripe)",
    "slack": "Slack: Event Subscriptions → Request URL = the URL; paste the app's Signing "
    "Secret: cairn source webhook rotate {label} --secret … (docs/webhooks.md#slack)",
    "linear": "Linear: Settings → API → New webhook with the URL; paste its signing secret: "
    "cairn source webhook rotate {label} --secret … (docs/webhooks.md#linear)",
    "standard": "point the sender at the URL; paste its whsec_… secret: "
    "cairn source webhook rotate {label} --secret whsec_… (docs/webhooks.md#standard-webhooks)",
    "hmac": "give the sender the URL and the secret (docs/webhooks.md#generic-hmac)",
}


@webhook.command("add")
@click.argument("label")
@click.option(
    "--provider",
    default="cairn",
    show_default=True,
    help=f"Who sends: {', '.join(_PROVIDERS)} (or a plugin's name).",
)
@click.option(
    "--secret",
    help="The provider's own signing secret (Stripe/Standard whsec_…, Slack, Linear); "
    "omit it to have Cairn generate one where you type it into the sender (GitHub, hmac).",
)
@click.option("--header", help="hmac: the signature header (default X-Signature).")
@click.option("--algorithm", type=click.Choice(["sha256", "sha1"]), help="hmac: digest.")
@click.option("--encoding", type=click.Choice(["hex", "base64"]), help="hmac: digest encoding.")
@click.option("--prefix", help="hmac: text before the digest, e.g. 'sha256='.")
@click.option("--type-path", help="hmac: dotted JSON path of the event type.")
@click.option("--type-header", help="hmac: header holding the event type.")
@click.option("--id-path", help="hmac: dotted JSON path of the sender's event id.")
@click.option("--id-header", help="hmac: header holding the sender's event id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def add(
    cli: CliContext,
    /,
    label: str,
    provider: str,
    secret: str | None,
    as_json: bool,
    **hmac_options: str | None,
) -> None:
    """A webhook source LABEL: prints its URL and signing secret (shown once)."""
    options = {k: v for k, v in hmac_options.items() if v is not None}
    body: dict[str, Any] = {"label": label, "provider": provider, "signing_secret": secret}
    if options:
        body["options"] = options
    made = cli.call("add_webhook", body=body)
    base = (os.environ.get("CAIRN_PUBLIC_URL") or cli.url or "http://127.0.0.1:8765").rstrip("/")
    made["url"] = base + made["path"]
    if as_json:
        print_json(made)
        return
    chosen = made.get("provider", provider)
    click.echo(f"added {chosen} webhook source {label} ({made['source']['source_id']})")
    click.echo(f"URL:            {made['url']}")
    if made["signing_secret"] and not secret:
        click.echo(f"signing secret: {made['signing_secret']}   (shown once; keep it secret)")
    elif made["signing_secret"]:
        click.echo("signing secret: the one you pasted (stored encrypted)")
    else:
        click.echo("signing secret: none yet; deliveries are refused until you paste it")
    click.echo(_NEXT_STEP.get(chosen, "docs/webhooks.md").format(label=label))


@webhook.command("rotate")
@click.argument("source")
@click.option("--secret", help="The new secret (pasted from the provider); omit to generate.")
@click.option(
    "--overlap",
    default="24h",
    show_default=True,
    help="How long the previous secret keeps verifying ('0' to drop it now).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def rotate(cli: CliContext, source: str, secret: str | None, overlap: str, as_json: bool) -> None:
    """A new signing secret for SOURCE (id or label); also how a pasted secret is set."""
    done = cli.call(
        "rotate_webhook_secret", ref=source, body={"signing_secret": secret, "overlap": overlap}
    )
    if as_json:
        print_json(done)
        return
    if secret:
        click.echo(f"source {done['source']['label']} now verifies with the pasted secret")
    else:
        click.echo(f"new signing secret: {done['signing_secret']}   (shown once; keep it secret)")
    if done["previous_valid_until"]:
        click.echo(f"the previous secret keeps verifying until {done['previous_valid_until']}")


@click.group()
def schedule() -> None:
    """Schedule sources: cron expressions that emit ``schedule.tick`` events."""


def _schedule_added(made: dict[str, Any]) -> None:
    config = made["config"]
    click.echo(
        f"added schedule source {made['label']} ({made['source_id']}): "
        f"{config['cron']} {config['timezone']}"
    )


@schedule.command("add")
@click.argument("label")
@click.option("--cron", required=True, help="Five-field cron expression, e.g. '0 2 * * *'.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone.")
@output(_schedule_added)
@pass_cli
def add_schedule(cli: CliContext, label: str, cron: str, timezone: str) -> Any:
    """A schedule source LABEL; bind triggers to it with --event-type schedule.tick."""
    return cli.call("add_schedule", body={"label": label, "cron": cron, "timezone": timezone})
