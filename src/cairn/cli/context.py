"""State shared by the commands of one invocation: settings and the lazily opened app."""

from __future__ import annotations

import json
from typing import Any

import click

from cairn.services.app import App


class CliContext:
    """Holds ``--db`` / ``--sandbox`` and opens the app on first use."""

    def __init__(self, *, database_url: str | None, sandbox: str) -> None:
        self._database_url = database_url
        self.sandbox = sandbox
        self._app: App | None = None

    @property
    def app(self) -> App:
        """The application over the configured ledger."""
        if self._app is None:
            from cairn.config import load_settings

            self._app = App(load_settings(database_url=self._database_url, sandbox=self.sandbox))
        return self._app

    def close(self) -> None:
        """Release the database."""
        if self._app is not None:
            self._app.close()


pass_cli = click.make_pass_decorator(CliContext)


def print_json(data: Any) -> None:
    """Machine-readable output: stable, indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def parse_json_option(value: str | None, what: str) -> Any:
    """Parse a JSON command-line value, naming the option when it does not parse."""
    from cairn.errors import InvalidJSON

    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"{what} is not valid JSON ({exc.msg} at column {exc.colno})") from None


def run_async(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a coroutine function to completion from a synchronous command."""
    import anyio

    return anyio.run(lambda: function(*args, **kwargs))
