"""``cairn serve``: the HTTP API, this node's workers and the live streams, on uvicorn."""

from __future__ import annotations

import click

from cairn.cli.context import CliContext, pass_cli

STREAMS_GRACE_S = 3
"""On shutdown, how long open requests (live streams above all) get before they are cut;
the runs then get the workers' own grace period."""


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
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
    """Serve the API on HOST:PORT over the configured ledger (embedded SQLite by default).

    Fires are queued in the ledger; this node's workers (and any `cairn worker` on the
    same database) execute them. An owner key per sandbox is kept in
    CAIRN_HOME/local-keys/, and the CLI on this machine uses it by itself when CAIRN_URL
    points here."""
    import uvicorn

    from cairn.api.app import create_app
    from cairn.services.access import local_key

    app = cli.app
    app.store.check_writable()
    if local_login:
        from dataclasses import replace

        app.settings = replace(app.settings, dashboard_autologin=True)
    if demo:
        from cairn.cli.context import run_async
        from cairn.cli.demo import print_summary
        from cairn.services.demo import load_demo

        print_summary(run_async(load_demo, app))
    from cairn.services.access import list_sandboxes

    for sandbox_id, _name in list_sandboxes(app):
        local_key(app, sandbox_id)
    api = create_app(
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
        f"\n  export CAIRN_URL=http://{host}:{port}   # the CLI then talks to this server"
        f"\n  API docs: http://{host}:{port}/docs"
    )
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
