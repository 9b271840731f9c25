"""Entry point. Errors are shown here and only here: one line, a non-zero exit code.

Command modules are imported when their group is used, and the heavy libraries (rich,
anyio, the MCP client) only by the commands that need them, so ``cairn agent runs
--json`` starts in a fraction of a second.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from cairn.errors import CairnError, UsageError

_GROUPS = {
    "agent": ("cairn.cli.agents", "Create, inspect, test and list the runs of agents."),
    "runs": ("cairn.cli.runs", "Inspect and prune runs in the ledger."),
    "source": ("cairn.cli.sources", "Register and check tool sources (MCP servers)."),
    "demo": ("cairn.cli.demo", "Load the demo sandbox: example agents and runs."),
    "serve": ("cairn.cli.serve", "Run the HTTP API, workers and live streams."),
    "worker": ("cairn.cli.worker", "Execute queued runs (scale-out workers)."),
    "status": ("cairn.cli.status", "Backlog, workers alive, oldest queued run."),
    "sandbox": ("cairn.cli.access", "Create and list sandboxes."),
    "key": ("cairn.cli.access", "Create, list and revoke API keys."),
    "credential": ("cairn.cli.access", "Model-backend API keys for the sandbox."),
    "connection": ("cairn.cli.connections", "OAuth connections for integration sources."),
    "events": ("cairn.cli.events", "Events sources received, and every trigger's decision."),
    "run": ("cairn.cli.oneshot", "Fire a one-shot agent turn from the shell."),
    "mcp": ("cairn.cli.mcp_server", "Serve Cairn to MCP clients on stdio (runs, doctor)."),
    "doctor": ("cairn.cli.doctor", "Scan for what needs fixing, without running."),
    "usage": ("cairn.cli.usage", "Tokens, runs and estimated cost over a window."),
    "ask": ("cairn.cli.ask", "Ask the Concierge in plain English."),
    "export": (
        "cairn.cli.export",
        "Send runs to OpenTelemetry (OTLP); what was exported and dropped.",
    ),
}
"""Each command: the module that defines it under the same name, and its line of help."""


SERVER_MODULES = frozenset(
    {"sqlalchemy", "alembic", "mcp", "jsonschema", "croniter", "cryptography", "fastapi"}
    | {"uvicorn", "jinja2", "swagger_ui_bundle", "starlette"}
)
"""The ``server`` extra's modules: without them the command says what to install."""


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _GROUPS.get(cmd_name)
        if entry is None:
            return None
        import importlib

        command: click.Command = getattr(importlib.import_module(entry[0]), cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _GROUPS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.option("--db", "database_url", envvar="CAIRN_DATABASE_URL", help="Ledger database URL.")
@click.option("--sandbox", envvar="CAIRN_SANDBOX", default="default", show_default=True)
@click.option("--url", envvar="CAIRN_URL", help="A Cairn server; without it, work in-process.")
@click.version_option(package_name="cairn-runtime")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, sandbox: str, url: str | None) -> None:
    """Cairn: event-driven agents and the run ledger that explains them."""
    from cairn.cli.context import CliContext

    ctx.obj = CliContext(database_url=database_url, sandbox=sandbox, url=url)
    ctx.call_on_close(ctx.obj.close)


def _check_text(args: list[str]) -> None:
    """Arguments that are not valid UTF-8 (Python keeps the stray bytes as surrogates) are
    refused here: they could not be stored or sent as JSON further on."""
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UsageError(
                f"an argument is not valid UTF-8 text (after {arg[: exc.start][-20:]!r}): "
                "check the terminal's or the script's encoding"
            ) from None


def main(argv: Sequence[str] | None = None) -> Any:
    """Console-script entry: run the CLI, turning expected errors into one line and an exit code."""
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        _check_text(args)
        return cli.main(args=args, prog_name="cairn", standalone_mode=False)
    except CairnError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except ModuleNotFoundError as missing:
        if (missing.name or "").split(".")[0] not in SERVER_MODULES:
            raise
        click.echo(
            f"error: this needs Cairn's server part ({missing.name} is not installed): "
            "pip install 'cairn-runtime[server]'",
            err=True,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
