"""``cairn connection …``: the OAuth connections integration sources use."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.context import CliContext, confirm, output, pass_cli
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


def _connected(made: dict[str, Any]) -> None:
    account = f" as {made['account_label']}" if made["account_label"] else ""
    click.echo(f"connected {made['app_slug']}{account} ({made['connection_id']}, {_expiry(made)})")


@connection.command("add")
@click.argument("app_slug")
@click.option(
    "--token",
    envvar="CAIRN_CONNECT_TOKEN",
    help="The OAuth access token (or CAIRN_CONNECT_TOKEN, to keep it out of shell history).",
)
@click.option("--expires-in", type=int, help="Seconds the token is valid from now.")
@click.option("--account", default="", help="Whose account it is, for people.")
@output(_connected)
@pass_cli
def add(
    cli: CliContext, app_slug: str, token: str | None, expires_in: int | None, account: str
) -> Any:
    """Store APP_SLUG's OAuth token, encrypted; it replaces the app's previous connection."""
    if not token:
        raise UsageError(f"pass --token or set CAIRN_CONNECT_TOKEN to connect {app_slug}")
    body = {
        "app_slug": app_slug,
        "access_token": token,
        "expires_in_s": expires_in,
        "account_label": account,
    }
    return cli.call("add_connection", body=body)


def _connection_lines(found: list[dict[str, Any]]) -> None:
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


@connection.command("list")
@output(_connection_lines)
@pass_cli
def list_(cli: CliContext) -> Any:
    """The sandbox's connections, revoked ones too (never their tokens)."""
    return cli.call("list_connections")


@connection.command("revoke")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@output(lambda gone: click.echo(f"revoked connection {gone['connection_id']} ({gone['app_slug']})"))
@pass_cli
def revoke(cli: CliContext, ref: str, yes: bool) -> Any:
    """Revoke connection REF (an id, or an app slug: its active connection) and forget its
    token; the app's integration sources are skipped until it is connected again."""
    confirm(f"revoke connection {ref} and forget its token?", yes)
    return cli.call("revoke_connection", ref=ref)
