"""``cairn source …``."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.context import CliContext, confirm, output, parse_json_option, pass_cli
from cairn.errors import InvalidJSON, UsageError


@click.group()
def source() -> None:
    """Register and check tool sources (the user's MCP servers; builtin is always there)."""


def _env_pairs(values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--env takes NAME=VALUE, got {item!r}")
        pairs[name] = value
    return pairs


def _print_health(report: dict[str, Any]) -> None:
    label = report["source"]["label"]
    if report["ok"]:
        click.echo(
            f"{label}: healthy, {len(report['tool_names'])} tools in "
            f"{report['duration_ms']:.0f} ms: " + ", ".join(report["tool_names"])
        )
    else:
        click.echo(f"{label}: status error ({report['reason']}): {report['message']}", err=True)


def _added(report: dict[str, Any]) -> None:
    click.echo(f"added source {report['source']['label']} ({report['source']['source_id']})")
    _print_health(report)


@source.command("add")
@click.argument("label")
@click.option("--command", "command_", help="stdio: the server command.")
@click.option("--arg", "args", multiple=True, help="stdio: one argument (repeat).")
@click.option("--env", "env", multiple=True, help="stdio: NAME=VALUE for the server (secret).")
@click.option("--url", help="http: the streamable-HTTP endpoint.")
@click.option(
    "--auth",
    type=click.Choice(["none", "bearer", "header"]),
    default="none",
    show_default=True,
    help="How an http source authenticates: a bearer token or a custom header.",
)
@click.option("--token", envvar="CAIRN_MCP_TOKEN", help="Bearer token or header value.")
@click.option("--header-name", help="auth=header: the header to send.")
@click.option("--namespace", help="Prefix for tool names (default: the label).")
@click.option("--allowed-tools", help="JSON list: only these tools of the server.")
@click.option("--calls-per-minute", type=int, help="Cap on calls to this server.")
@output(_added)
@pass_cli
def add(
    cli: CliContext,
    label: str,
    command_: str | None,
    args: tuple[str, ...],
    env: tuple[str, ...],
    url: str | None,
    auth: Any,
    token: str | None,
    header_name: str | None,
    namespace: str | None,
    allowed_tools: str | None,
    calls_per_minute: int | None,
) -> Any:
    """Register an MCP server as LABEL (stdio with --command, or http with --url) and check it.

    \b
    Examples:
      cairn source add shop --command python --arg -m --arg my_shop_server
      cairn source add crm --url https://crm.internal/mcp --auth bearer --token "$TOKEN"
    """
    if bool(command_) == bool(url):
        raise UsageError("pass exactly one of --command (stdio) or --url (streamable HTTP)")
    allowed = parse_json_option(allowed_tools, "--allowed-tools")
    if allowed is not None and not (
        isinstance(allowed, list) and all(isinstance(x, str) for x in allowed)
    ):
        raise InvalidJSON("--allowed-tools must be a JSON list of tool names")
    body = {
        "label": label,
        "transport": "stdio" if command_ else "http",
        "command": command_,
        "args": list(args),
        "url": url,
        "auth": auth,
        "token": token if auth != "none" else None,
        "header_name": header_name,
        "env": _env_pairs(env),
        "namespace": namespace,
        "allowed_tools": allowed,
        "calls_per_minute": calls_per_minute,
    }
    return cli.call("add_source", body=body)


@source.command("list")
@output("render.sources_table")
@pass_cli
def list_(cli: CliContext) -> Any:
    """Every source of the sandbox and its status."""
    return cli.call("list_sources")


@source.command("show")
@click.argument("source_ref")
@output("render.source_detail")
@pass_cli
def show(cli: CliContext, source_ref: str) -> Any:
    """One source (by id or label): configuration and status; secrets by name only."""
    return cli.call("get_source", ref=source_ref)


@source.command("test")
@click.argument("source_ref")
@output(_print_health, fails=lambda report: not report["ok"])
@pass_cli
def test(cli: CliContext, source_ref: str) -> Any:
    """Health-check a source now (tools/list); exit 1 when it fails."""
    return cli.call("test_source", ref=source_ref)


@source.command("revoke")
@click.argument("source_ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def revoke(cli: CliContext, source_ref: str, yes: bool) -> None:
    """Forget a source's binding and secret (the server keeps running)."""
    confirm(f"revoke source {source_ref} and forget its secret?", yes)
    revoked = cli.call("revoke_source", ref=source_ref)
    click.echo(f"revoked source {revoked['label']} ({revoked['source_id']})")


from cairn.cli.webhooks import schedule, webhook  # noqa: E402 - subgroups of ``source``

source.add_command(webhook)
source.add_command(schedule)


@source.group("integration")
def integration() -> None:
    """OAuth'd apps (slack, github, …) as tool sources, through the connection provider."""


def _integration_added(made: dict[str, Any]) -> None:
    click.echo(
        f"added integration source {made['label']} ({made['source_id']}): tools appear as "
        f"{made['config']['namespace']}_<tool> once {made['config']['app_slug']} is connected"
    )


@integration.command("add")
@click.argument("app_slug")
@click.option("--label", help="The source's label (default: the app slug).")
@click.option("--provider-url", help="The provider's MCP base URL (default: CAIRN_CONNECT_URL).")
@output(_integration_added)
@pass_cli
def add_integration(
    cli: CliContext, app_slug: str, label: str | None, provider_url: str | None
) -> Any:
    """Add APP_SLUG's tools as pd_<app_slug>_<tool>; runs skip it, with the reason, until
    'cairn connection add APP_SLUG' gives it a working token."""
    body = {"app_slug": app_slug, "label": label, "provider_url": provider_url}
    return cli.call("add_integration_source", body=body)
