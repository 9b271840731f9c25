"""``cairn worker``: a worker process that executes queued runs from the ledger.

Start any number, on any machine that reaches the database (PostgreSQL for more than one
machine). SIGTERM or Ctrl-C stops it gracefully: no new runs are claimed, running runs get
``--grace`` seconds, queued runs stay queued for the other workers.
"""

from __future__ import annotations

import click

from cairn.cli.context import CliContext, pass_cli


@click.command()
@click.option("--concurrency", default=8, show_default=True, help="Runs at once.")
@click.option(
    "--grace",
    "grace_s",
    default=10.0,
    show_default=True,
    help="Seconds running runs get to finish on shutdown.",
)
@pass_cli
def worker(cli: CliContext, concurrency: int, grace_s: float) -> None:
    """Execute queued runs (CAIRN_EXECUTOR: embedded or procrastinate) until stopped."""
    import asyncio
    import signal

    import anyio

    from cairn.execution import open_executor
    from cairn.tools.pool import SessionPool

    app = cli.app
    executor = open_executor(app)
    app.executor = executor
    made = executor.worker(concurrency=concurrency)

    async def main() -> None:
        stop = anyio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with (  # warm MCP sessions for this worker's runs, closed when it stops
            SessionPool(app.tool_context, app.pool_settings) as tool_pool,
            anyio.create_task_group() as group,
        ):
            app.tool_pool = app.runner.tool_pool = tool_pool
            await group.start(made.run)
            click.echo(
                f"Cairn worker {made.worker_id} ({executor.name}, {concurrency} slots) taking runs",
                err=True,
            )
            await stop.wait()
            await made.stop(grace_s)

    asyncio.run(main())
