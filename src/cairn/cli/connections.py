"""``cairn connection …``: the OAuth connections integration sources use."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.context import CliContext, pass_cli, print_json
from cairn.errors import UsageError


@click.group()
def connection() -> None:
    """OAuth connections for integration sources (slack, github, linear, …).

    Register the app as a tool source with 'cairn source integration add APP'; its runs
    skip it, with the reason, until it has a connection that works.
    """


def _expiry(item: dict[str, Any]) -> str:
    if item["expires_at"] is None:
        return "no expiry"
    return ("expired " if item["expired"] else "expires ") + str(item["expires_at"])


@connection.command("add")
@click.argument("app_slug")
@click.option(
    "--token",
    envvar="CAIRN_CONNECT_TOKEN",
    help="The OAuth access token (or CAIRN_CONNECT_TOKEN, to keep it out of shell history).",
)
@click.option("--expires-in", type=int, help="Seconds the token is valid from now.")
@click.option("--account", default="", help="Whose account it is, for people.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def add(
    cli: CliContext,
    app_slug: str,
    token: str | None,
    expires_in: int | None,
    account: str,
    as_json: bool,
) -> None:
    """Store APP_SLUG's OAuth token, encrypted; it replaces the app's previous connection."""
    if not token:
        raise UsageError(f"pass --token or set CAIRN_CONNECT_TOKEN to connect {app_slug}")
    made = cli.call(
        "add_connection",
        body={
            "app_slug": app_slug,
            "access_token": token,
            "expires_in_s": expires_in,
            "account_label": account,
        },
    )
    if as_json:
        print_json(made)
        return
    account_part = f" as {made['account_label']}" if made["account_label"] else ""
    click.echo(
        f"connected {made['app_slug']}{account_part} ({made['connection_id']}, {_expiry(made)})"
    )


@connection.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def list_(cli: CliContext, as_json: bool) -> None:
    """The sandbox's connections, revoked ones too (never their tokens)."""
    found = cli.call("list_connections")
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no connections; add one with 'cairn connection add APP --token …'")
    for item in found:
        click.echo(
            "\t".join(
                (
                    item["connection_id"],
                    item["app_slug"],
                    item["status"],
                    _expiry(item),
                    item["account_label"],
                )
            )
        )


@connection.command("revoke")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def revoke(cli: CliContext, ref: str, yes: bool, as_json: bool) -> None:
    """Revoke connection REF (an id, or an app slug: its active connection) and forget its
    token; the app's integration sources are skipped until it is connected again."""
    from cairn.cli.context import confirm

    confirm(f"revoke connection {ref} and forget its token?", yes)
    revoked = cli.call("revoke_connection", ref=ref)
    if as_json:
        print_json(revoked)
    else:
        click.echo(f"revoked connection {revoked['connection_id']} ({revoked['app_slug']})")
