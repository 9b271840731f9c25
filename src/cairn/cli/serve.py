"""``cairn serve``: the HTTP API, this node's workers and the live streams, on uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cairn.cli.context import CliContext, pass_cli, run_async
from cairn.errors import UsageError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from cairn.services.app import App

STREAMS_GRACE_S = 3
"""On shutdown, how long open requests (live streams above all) get before they are cut;
the runs then get the workers' own grace period."""


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="TCP port (checked first).")
@click.option("--workers", "run_workers", default=8, show_default=True, help="Runs at once.")
@click.option(
    "--no-workers",
    is_flag=True,
    help="An API-only node: fires are queued in the ledger for `cairn worker` processes.",
)
@click.option(
    "--max-backlog",
    "--queue-size",
    "max_backlog",
    type=int,
    default=None,
    help="Queued runs past which fires are refused (429/503 with Retry-After) "
    "[default: CAIRN_MAX_BACKLOG or 10000].",
)
@click.option(
    "--grace",
    "grace_s",
    default=10.0,
    show_default=True,
    help="Seconds running runs get to finish on shutdown (queued ones stay queued).",
)
@click.option("--demo", is_flag=True, help="Load the demo sandbox first.")
@click.option(
    "--local-login",
    is_flag=True,
    help="Let a browser on this machine into the dashboard without a key (single user, "
    "embedded ledger only; CAIRN_DASHBOARD_AUTOLOGIN=1 does the same).",
)
@pass_cli
def serve(
    cli: CliContext,
    host: str,
    port: int,
    run_workers: int,
    no_workers: bool,
    max_backlog: int | None,
    grace_s: float,
    demo: bool,
    local_login: bool,
) -> None:
    """Serve the API, the dashboard and live streams on HOST:PORT over the configured
    ledger (embedded SQLite by default). The port is checked before anything is loaded.

    Fires are queued in the ledger; this node's workers (and any `cairn worker` on the
    same database) execute them. An owner key per sandbox is kept in
    CAIRN_HOME/local-keys/, and the CLI on this machine uses it by itself when CAIRN_URL
    points here (after checking it is this server). With --demo, the dashboard opens the
    demo sandbox unless --sandbox names another.

    \b
    Examples:
      cairn serve --demo --port 8766
      CAIRN_DATABASE_URL=postgresql://cairn@db/cairn cairn serve --host 0.0.0.0
    """
    import uvicorn

    from cairn.services.access import local_key

    check_port_free(host, port)
    if demo and cli.sandbox == "default":
        from cairn.services.demo import DEMO_SANDBOX

        cli.sandbox = DEMO_SANDBOX  # what the dashboard opens on this machine
    app = cli.app
    app.store.check_writable()
    if local_login:
        from dataclasses import replace

        app.settings = replace(app.settings, dashboard_autologin=True)
    if demo:
        from cairn.cli.demo import print_summary
        from cairn.services.demo import load_demo

        print_summary(run_async(load_demo, app))
    from cairn.services.access import list_sandboxes
    from cairn.services.local_identity import ensure_identity

    ensure_identity(app.settings.home)  # the CLI checks it before sending a local key
    for sandbox_id, _name in list_sandboxes(app):
        local_key(app, sandbox_id)
    api = serve_app(
        app,
        workers=run_workers,
        max_backlog=max_backlog,
        shutdown_grace_s=grace_s,
        run_workers=not no_workers,
    )
    ledger = app.settings.database_url.split("@")[-1]  # never print a password
    click.echo(
        f"Cairn serving on http://{host}:{port} (ledger: {ledger}, "
        f"executor: {app.settings.executor}, "
        f"{'no workers' if no_workers else f'{run_workers} worker slots'})"
        f"\n  dashboard: http://{host}:{port}/ (sandbox {cli.sandbox})"
        f"\n  export CAIRN_URL=http://{host}:{port}   # the CLI then talks to this server"
        f"\n  API docs: http://{host}:{port}/docs"
        f"\n  MCP server: http://{host}:{port}/mcp (Authorization: Bearer <key>)"
    )
    freeze_startup_objects()
    # Live streams (a run's, an agent's endless tail) keep their connections open: without a
    # bound, uvicorn would wait for them forever on SIGTERM and never stop the workers.
    uvicorn.run(
        api,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=STREAMS_GRACE_S,
    )


def freeze_startup_objects() -> None:
    """Move everything loaded so far (modules, the app, the routes: ~175,000 objects) out
    of the garbage collector's sight. They live as long as the server, and a full
    collection walking them took 160-200 ms on the 2-core bench machine, a pause every
    request in flight waited through (the webhook p99); after ``gc.freeze`` it walks only
    what serving created."""
    import gc

    gc.collect()
    gc.freeze()


def serve_app(app: App, **options: Any) -> FastAPI:
    """What ``cairn serve`` runs: the API (``cairn.api.app.create_app(app, **options)``)
    with the dashboard's pages and the MCP server (``/mcp``) mounted beside it. The API
    knows nothing of either; both call the same operations."""
    from cairn.api.app import create_app
    from cairn.web import actions, event_pages, pages

    api = create_app(app, **options)
    for router in (pages.router, event_pages.router, actions.router):
        api.include_router(router)
    mount_mcp(api, app)
    return api


def mount_mcp(api: FastAPI, app: App) -> None:
    """Serve ``cairn.mcpserver`` as streamable HTTP at ``/mcp``, its task group running
    inside the API's lifespan."""
    from contextlib import asynccontextmanager

    from starlette.routing import Route

    from cairn.mcpserver.http import PATH, McpEndpoint

    endpoint = McpEndpoint(app)
    api.router.routes.append(Route(PATH, endpoint, methods=["GET", "POST", "DELETE"]))
    inner = api.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: Any) -> Any:
        async with inner(served) as state, endpoint.lifespan():
            yield state

    api.router.lifespan_context = lifespan


def check_port_free(host: str, port: int) -> None:
    """Refuse a port something already listens on, before the demo is loaded or a banner
    claims the server is up."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"cannot serve on host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(
                f"port {port} on {host} is not free ({exc.strerror}): pick another with "
                f"--port (make run PORT={port + 1})"
            ) from None
