"""``cairn sandbox …``, ``cairn key …`` and ``cairn credential …``."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.context import CliContext, confirm, output, pass_cli, print_json
from cairn.domain.keys import ROLES


@click.group()
def sandbox() -> None:
    """Create and list sandboxes (the tenancy boundary)."""


@sandbox.command("create")
@click.argument("sandbox_id")
@click.option("--name", help="A display name (default: the id).")
@output(lambda made: click.echo(f"created sandbox {made['sandbox_id']}"))
@pass_cli
def create_sandbox(cli: CliContext, sandbox_id: str, name: str | None) -> Any:
    """Create SANDBOX_ID (an owner of 'default' may)."""
    return cli.call("create_sandbox", body={"sandbox_id": sandbox_id, "name": name})


def _sandbox_lines(found: list[dict[str, Any]]) -> None:
    for item in found:
        click.echo(f"{item['sandbox_id']}\t{item['name']}")


@sandbox.command("list")
@output(_sandbox_lines)
@pass_cli
def list_sandboxes(cli: CliContext) -> Any:
    """The sandboxes you can see."""
    return cli.call("list_sandboxes")


@click.group()
def key() -> None:
    """Create, list and revoke API keys of the sandbox (owner)."""


@key.command("create")
@click.option("--name", default="", help="What the key is for.")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="viewer",
    show_default=True,
    help="viewer reads and test-fires; editor also changes and fires; owner also manages keys.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def create_key(cli: CliContext, name: str, role: str, as_json: bool) -> None:
    """A new key; the token is printed this once and stored only as a hash."""
    made = cli.call("create_key", body={"name": name, "role": role})
    if as_json:
        print_json(made)
        return
    click.echo(f"created {role} key {made['key']['key_id']} for sandbox {cli.sandbox}")
    click.echo("token (shown once, keep it secret):")
    click.echo(made["token"])


def _key_lines(found: list[dict[str, Any]]) -> None:
    for item in found:
        state = f"revoked {item['revoked_at']}" if item["revoked_at"] else "active"
        click.echo(f"{item['key_id']}\t{item['role']}\t{state}\t{item['name']}")


@key.command("list")
@output(_key_lines)
@pass_cli
def list_keys(cli: CliContext) -> Any:
    """The sandbox's keys (never their tokens)."""
    return cli.call("list_keys")


@key.command("revoke")
@click.argument("key_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def revoke_key(cli: CliContext, key_id: str, yes: bool) -> None:
    """Revoke KEY_ID: calls with it answer 401 from now on."""
    confirm(f"revoke API key {key_id}?", yes)
    cli.call("revoke_key", key_id=key_id)
    click.echo(f"revoked key {key_id}")


@click.group()
def credential() -> None:
    """Model-backend API keys stored (encrypted) for the sandbox; the environment is the
    fallback (ANTHROPIC_API_KEY, OPENAI_API_KEY, GOOGLE_API_KEY)."""


@credential.command("set")
@click.argument("backend")
@click.option("--api-key", envvar="CAIRN_MODEL_API_KEY", help="The key (or stdin when omitted).")
@pass_cli
def set_credential(cli: CliContext, backend: str, api_key: str | None) -> None:
    """Store BACKEND's API key (read from stdin when --api-key is not given)."""
    import sys

    key = api_key if api_key is not None else sys.stdin.readline().strip()
    stored = cli.call("set_credential", backend=backend, body={"api_key": key})
    click.echo(f"stored a {stored['backend']} API key for sandbox {cli.sandbox}")


def _credential_lines(found: list[dict[str, Any]]) -> None:
    for item in found:
        click.echo(f"{item['backend']}\tstored {item['updated_at'][:19]}")


@credential.command("list")
@output(_credential_lines)
@pass_cli
def list_credentials(cli: CliContext) -> Any:
    """Backends with a stored key (never the keys)."""
    return cli.call("list_credentials")


@credential.command("remove")
@click.argument("backend")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def remove_credential(cli: CliContext, backend: str, yes: bool) -> None:
    """Forget BACKEND's stored key."""
    confirm(f"forget the stored {backend} API key?", yes)
    cli.call("delete_credential", backend=backend)
    click.echo(f"removed the stored {backend} API key")
