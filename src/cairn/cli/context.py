"""State shared by the commands of one invocation: which Cairn to talk to, and how.

With ``CAIRN_URL`` the CLI talks to that server through the SDK's HTTP transport
(``CAIRN_API_KEY``, or the local key ``cairn serve`` wrote in ``CAIRN_HOME``). Without it,
the SDK's in-process transport runs the same operations over the local ledger.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cairn.errors import CairnError, InvalidJSON, NotFound, UsageError

if TYPE_CHECKING:
    from cairn.client.transport import StreamEvent, Transport
    from cairn.services.app import App


class CliContext:
    """Holds ``--db`` / ``--sandbox`` / ``--url`` and opens the transport on first use."""

    def __init__(self, *, database_url: str | None, sandbox: str, url: str | None) -> None:
        self._database_url = database_url
        self.sandbox = sandbox
        self.url = url
        self._transport: Transport | None = None
        self._app: App | None = None

    @property
    def remote(self) -> bool:
        """Whether commands go to a server."""
        return bool(self.url)

    @property
    def transport(self) -> Transport:
        """The SDK transport every command goes through."""
        if self._transport is None:
            if self.url:
                from cairn.client.http import HttpTransport

                self._transport = HttpTransport(self.url, self._api_key(), self.sandbox)
            else:
                from cairn.client.local import LocalTransport

                self._transport = LocalTransport(self.app, self.sandbox)
        return self._transport

    @property
    def app(self) -> App:
        """The in-process application (local mode and local-only commands)."""
        if self._app is None:
            from cairn.config import load_settings
            from cairn.services.app import App

            self._app = App(load_settings(database_url=self._database_url, sandbox=self.sandbox))
        return self._app

    def _api_key(self) -> str | None:
        """``CAIRN_API_KEY``, else the local owner key of the sandbox, but only for the
        server that issued it (``cairn.services.local_identity``): never to another host,
        port or Cairn server."""
        key = os.environ.get("CAIRN_API_KEY")
        if key:
            return key
        from cairn.config import load_settings, local_key_path
        from cairn.services.local_identity import read_identity

        settings = load_settings(database_url=self._database_url, sandbox=self.sandbox)
        home = settings.home
        local = local_key_path(settings, self.sandbox)  # this ledger's key, not another's
        secret = read_identity(home)
        if secret is None:
            return None
        assert self.url is not None
        if not server_is_ours(self.url, secret):
            from cairn.errors import UsageError

            raise UsageError(
                f"{self.url} is not the Cairn server started from CAIRN_HOME={home}, so its "
                "local owner key is not sent there: set CAIRN_API_KEY to a key of that server"
            )
        if not local.exists():  # a sandbox made after the server started: make its key here
            return self._mint_local_key()
        return local.read_text().strip()

    def _mint_local_key(self) -> str | None:
        from cairn.services.access import local_key

        try:
            return local_key(self.app, self.sandbox)
        except NotFound:
            return None  # no such sandbox: the server says so

    def call(self, operation: str, *, body: Any = None, **params: Any) -> Any:
        """Call an operation of the table (``cairn.api.table``) by name, with its path and
        query parameters and its JSON body, through the transport."""
        return self.transport.call(operation, params, body)

    def stream(self, operation: str, **params: Any) -> Iterator[StreamEvent]:
        """Follow a stream operation of the table by name."""
        return self.transport.stream(operation, params)

    def close(self) -> None:
        """Release connections and the database."""
        if self._transport is not None:
            self._transport.close()  # in-process, this closes the app too
        if self._app is not None and (self._transport is None or self.url):
            self._app.close()


pass_cli = click.make_pass_decorator(CliContext)


def server_is_ours(url: str, secret: bytes) -> bool:
    """Whether the server at ``url`` proves it holds ``secret`` (a fresh nonce each time)."""
    import httpx

    from cairn.services.local_identity import new_nonce, verify

    nonce = new_nonce()
    try:
        response = httpx.get(
            url.rstrip("/") + "/local-identity", params={"nonce": nonce}, timeout=10
        )
    except httpx.HTTPError as exc:
        raise CairnError(f"cannot reach the Cairn server at {url}: {exc}") from None
    if response.status_code != 200:
        return False
    try:
        proof = response.json().get("proof")
    except (ValueError, AttributeError):
        return False
    return verify(secret, nonce, proof)


def print_json(data: Any) -> None:
    """Machine-readable output: stable, indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def output(
    view: str | Callable[[Any], None],
    *,
    help: str = "Print JSON, for scripts.",
    fails: Callable[[Any], bool] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., None]]:
    """The ``--json`` flag of a command that returns what it shows: with ``--json`` the
    result is printed as JSON for scripts, else ``view`` shows it to people. A view named
    ``"module.function"`` (of ``cairn.cli``) is imported only then, so rich stays off the
    cold path of ``--json``. The command then exits 1 when ``fails(result)``, for scripts
    (a run that did not succeed, a check that found something)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., None]:
        @functools.wraps(command)
        def show(*args: Any, as_json: bool, **kwargs: Any) -> None:
            result = command(*args, **kwargs)
            if as_json:
                print_json(result)
            elif isinstance(view, str):
                import importlib

                module, _, name = view.rpartition(".")
                getattr(importlib.import_module(f"cairn.cli.{module}"), name)(result)
            else:
                view(result)
            if fails is not None and fails(result):
                raise SystemExit(1)

        return click.option("--json", "as_json", is_flag=True, help=help)(show)

    return decorate


def option_set(*options: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click options as one decorator, in the order given (the order of --help)."""

    def apply(function: Any) -> Any:
        for option in reversed(options):
            function = option(function)
        return function

    return apply


def parse_json_option(value: str | None, what: str) -> Any:
    """Parse a JSON command-line value, naming the option when it does not parse."""
    from cairn.domain.limits import check_value

    if value is None:
        return None

    def constant(name: str) -> Any:  # NaN, Infinity: Python reads them, JSON has none
        raise InvalidJSON(f"{what} holds {name}, which is not JSON: send a number or null")

    try:
        parsed = json.loads(value, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"{what} is not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        from cairn.domain.limits import MAX_DEPTH

        raise InvalidJSON(f"{what} is nested too deep; the limit is {MAX_DEPTH}") from None
    return check_value(parsed, what)


def read_text_file(path: Path, what: str) -> str:
    """A UTF-8 text file given on the command line, or one line saying what is wrong."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {str(path)!r}: {exc.strerror}") from None


def run_async(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a coroutine function to completion from a synchronous command."""
    import anyio

    return anyio.run(lambda: function(*args, **kwargs))


@contextmanager
def waiting(message: str) -> Iterator[None]:
    """A spinner on stderr while a slow call runs, for people only (not when piped)."""
    import sys

    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def confirm(question: str, yes: bool) -> None:
    """Ask before something that cannot be undone; without a terminal, demand ``--yes``."""
    import sys

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question.rstrip('?')}: confirmation needed, pass --yes")
    click.confirm(question, abort=True)
