"""The API's factory: the FastAPI application and the lifecycle of this node's workers.

``create_app(app)`` is the API that ``cairn serve`` runs under uvicorn, with the dashboard
mounted beside it by ``cairn.cli.serve``. Its routes come from the operation table
(``cairn.api.table``, via ``cairn.api.routes``); errors are answered in
``cairn.api.problems``; callers are authenticated in ``cairn.api.dependencies``. Fires are
queued in the ledger for the workers of the execution backend (``cairn.execution``); this
node runs some unless ``run_workers`` is off (an API-only node). Shutdown is graceful: the
workers stop claiming, running runs get a grace period and are then cancelled with the
reason, and queued runs stay queued for the next start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from cairn import __version__
from cairn.api import docs_routes, identity_routes
from cairn.api.hooks import HookDeliveries, hooks
from cairn.api.intake import IntakeLimits
from cairn.api.problems import add_problem_handlers
from cairn.api.routes import operation_routes
from cairn.api.streams import streams
from cairn.runner.bus import RunBus
from cairn.services.app import App
from cairn.services.sessions import SESSION_COOKIE


def create_app(
    cairn: App,
    *,
    workers: int = 8,
    max_backlog: int | None = None,
    shutdown_grace_s: float = 10.0,
    run_schedules: bool = True,
    run_workers: bool = True,
) -> FastAPI:
    """The API over ``cairn``. Fires are queued in the ledger for the execution backend's
    workers; ``run_workers`` starts ``workers`` of them in this process, and the scheduler
    emits schedule sources' ticks (``run_schedules``). ``max_backlog`` overrides the
    backlog limit of the settings (``CAIRN_MAX_BACKLOG``)."""
    from cairn.execution import open_executor
    from cairn.execution.base import BacklogGate

    cairn.bus = RunBus()
    cairn.runner.bus = cairn.bus  # a runner made before serving (``serve --demo``) publishes too
    executor = open_executor(cairn)
    cairn.executor = executor
    if max_backlog is not None:
        cairn._gate = BacklogGate(cairn, max_backlog)
    worker = executor.worker(concurrency=workers) if run_workers else None

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        from cairn.services.background import start_background_tasks
        from cairn.services.schedules import run_scheduler
        from cairn.tools.pool import SessionPool

        async with (
            SessionPool(cairn.tool_context, cairn.pool_settings) as tool_pool,
            anyio.create_task_group() as group,
        ):
            cairn.tool_pool = cairn.runner.tool_pool = tool_pool
            if worker is not None:
                await group.start(worker.run)
            if run_schedules:
                group.start_soon(run_scheduler, cairn)
            start_background_tasks(group, cairn)
            try:
                yield
            finally:
                if worker is not None:
                    await worker.stop(shutdown_grace_s)
                group.cancel_scope.cancel()  # stops the scheduler; the worker has finished
                cairn.tool_pool = cairn.runner.tool_pool = None  # closed with the block

    api = FastAPI(
        title="Cairn",
        version=__version__,
        description=(
            "Event-driven agents and the run ledger that explains them. Every route but "
            "/healthz needs `Authorization: Bearer <key>`; errors are problem+json."
        ),
        lifespan=lifespan,
        docs_url=None,  # cairn.api.docs_routes serves /docs without a CDN
        redoc_url=None,
    )
    api.state.cairn = cairn
    add_problem_handlers(api)
    api.add_middleware(IntakeLimits, cookie_name=SESSION_COOKIE)
    api.add_middleware(HookDeliveries)  # outermost: webhook deliveries skip the routing
    api.include_router(hooks)  # first: the hottest route is matched before any other
    api.include_router(operation_routes())
    api.include_router(streams)
    api.include_router(identity_routes.router)
    api.include_router(docs_routes.router)

    @api.get("/healthz", tags=["meta"], summary="Liveness: the server answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api
