"""The FastAPI application: errors as problem+json in one place, API-key auth scoped to the
path's sandbox, and the lifecycle of this node's workers.

``create_app(app)`` is what ``cairn serve`` runs under uvicorn. Fires are queued in the
ledger for the workers of the execution backend (``cairn.execution``); this node runs some
unless ``run_workers`` is off (an API-only node). Shutdown is graceful: the workers stop
claiming, running runs get a grace period and are then cancelled with the reason, and
queued runs stay queued for the next start.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cairn import errors
from cairn.api.operations import Caller
from cairn.domain.keys import Principal
from cairn.runner.bus import RunBus
from cairn.services.access import authenticate
from cairn.services.app import App
from cairn.services.sessions import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    authenticate_session,
)

log = logging.getLogger("cairn.api")
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, error: str) -> JSONResponse:
    """An RFC 9457 problem response."""
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, "error": error},
        status_code=status,
        media_type=PROBLEM,
    )


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}


async def _cairn_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.CairnError)
    status = exc.http_status
    response = problem(status, _TITLES.get(status, "Error"), str(exc), type(exc).__name__)
    if isinstance(exc, errors.Busy):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _invalid_detail(error: dict[str, Any]) -> str:
    """One line naming what is wrong where (a body that is missing or is not JSON, too)."""
    loc = tuple(error.get("loc", ()))
    message = str(error.get("msg", "invalid request"))
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error") or "malformed"
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return f"the request body is not valid JSON ({reason}{at})"
    if loc == ("body",) and error.get("type") == "missing":
        return "the request needs a JSON body"
    where = ".".join(str(part) for part in loc if part != "body")
    return f"{where}: {message}" if where else f"request body: {message}"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    return problem(422, "Invalid request", _invalid_detail(dict(first)), "InvalidRequest")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = problem(
        exc.status_code, _TITLES.get(exc.status_code, "Error"), str(exc.detail), "HTTPError"
    )
    response.headers.update(exc.headers or {})  # a 405's ``Allow`` above all
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(500, "Internal error", f"internal error: {type(exc).__name__}", "InternalError")


_DESCRIBED = {
    400: "The input cannot be used, or the body is not JSON (the detail says why)",
    401: "Missing, unknown or revoked API key",
    403: "The key's role does not allow this",
    404: "No such sandbox or object (for this key)",
    409: "Already exists, or does not fit the current state",
    422: "The request body or parameters are malformed",
    429: "The backlog is full; nothing was fired, retry after Retry-After seconds",
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented problem+json answers of a route: 400, 401, 404 and 422 always (any
    route can get a bad key, an unknown sandbox or a malformed request), plus ``codes``."""
    from cairn import wire

    return {
        code: {"model": wire.Problem, "description": _DESCRIBED[code]}
        for code in dict.fromkeys((400, 401, 404, 422, *codes))
    }


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def request_principal(request: Request, authorization: str | None) -> Principal:
    """The caller: an API key in the ``Authorization`` header, else the dashboard's session
    cookie (``cairn.services.sessions``: a session token, never a key). The cookie is
    SameSite=Strict; on top of that, a method other than GET/HEAD must echo the CSRF cookie
    in ``X-Cairn-CSRF``, which only a page of this origin can read, so no other site can
    make a browser act with it."""
    cairn: App = request.app.state.cairn
    if authorization:
        return authenticate(cairn, bearer_token(authorization))
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return authenticate(cairn, None)  # the "missing API key" answer
    if request.method not in ("GET", "HEAD"):
        expected = request.cookies.get(CSRF_COOKIE) or ""
        sent = request.headers.get(CSRF_HEADER) or ""
        if not expected or not secrets.compare_digest(expected.encode(), sent.encode()):
            raise errors.Forbidden(
                f"a cookie-authenticated {request.method} needs the {CSRF_HEADER} header"
            )
    return authenticate_session(cairn, token)


def caller_for(request: Request, sandbox: str, authorization: str | None) -> Caller:
    """Authenticate and scope to ``sandbox``: another sandbox's caller gets 404, never data."""
    cairn: App = request.app.state.cairn
    principal = request_principal(request, authorization)
    if principal.sandbox_id != sandbox:  # the key's own sandbox is no secret to its holder
        raise errors.NotFound(
            f"no sandbox {sandbox!r} for this key: it belongs to sandbox "
            f"{principal.sandbox_id!r} (--sandbox {principal.sandbox_id})"
        )
    return Caller(cairn, principal)


def current_caller(
    request: Request,
    sandbox: str,
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    """FastAPI dependency for sandbox-scoped routes."""
    return caller_for(request, sandbox, authorization)


def key_caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """FastAPI dependency for routes outside a sandbox path (the key's own sandbox)."""
    cairn: App = request.app.state.cairn
    return Caller(cairn, request_principal(request, authorization))


CallerDep = Annotated[Caller, Depends(current_caller)]
KeyCallerDep = Annotated[Caller, Depends(key_caller)]


EXTRA_ROUTERS = (
    ("cairn.api.diagnosis_routes", "router"),
    ("cairn.api.usage_routes", "router"),
    ("cairn.api.concierge_routes", "router"),
    ("cairn.api.telemetry_routes", "router"),
    ("cairn.api.status_routes", "router"),
    ("cairn.web.pages", "router"),
    ("cairn.web.event_pages", "router"),
    ("cairn.web.actions", "router"),
    ("cairn.api.identity_routes", "router"),
    ("cairn.api.docs_routes", "router"),
)
"""Feature modules that bring their own routers (explain/doctor, usage, Concierge, web
pages): adding a feature's routes is adding a line here, not editing this factory."""


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

    from cairn import __version__
    from cairn.api.routes import router
    from cairn.api.streams import streams

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
    api.add_exception_handler(errors.CairnError, _cairn_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(Exception, _unexpected)
    from cairn.api.intake import IntakeLimits

    api.add_middleware(IntakeLimits, cookie_name=SESSION_COOKIE)
    import importlib

    from cairn.api.connections_routes import connections
    from cairn.api.hooks import hooks

    api.include_router(hooks)  # first: the hottest route is matched before any other
    api.include_router(router)
    api.include_router(streams)
    api.include_router(connections)
    for module_name, attribute in EXTRA_ROUTERS:
        api.include_router(getattr(importlib.import_module(module_name), attribute))

    @api.get("/healthz", tags=["meta"], summary="Liveness: the server answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    api.openapi = _openapi_with_problems(api)  # type: ignore[method-assign]
    return api


def _openapi_with_problems(api: FastAPI) -> Callable[[], dict[str, Any]]:
    """``api.openapi`` documenting every 4xx/5xx as what is served: a ``Problem`` in
    ``application/problem+json``. (FastAPI files declared error models under
    ``application/json``, and its own 422 model is not what the handler above returns.)"""
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        document = generate()
        problem_schema = {"$ref": "#/components/schemas/Problem"}
        document.setdefault("components", {})["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key: `Authorization: Bearer key_….<secret>`",
            }
        }
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                if path.startswith("/api/"):
                    operation["security"] = [{"bearer": []}]
                if "requestBody" in operation:
                    operation["responses"].setdefault(
                        "413", {"description": "The body is over its size limit"}
                    )
                    operation["responses"].setdefault(
                        "400",
                        {"description": "Not JSON, nested too deep, or holding NaN/Infinity"},
                    )
                for code, response in operation.get("responses", {}).items():
                    if code[:1] in ("4", "5"):
                        response["content"] = {PROBLEM: {"schema": problem_schema}}
        schemas = document.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's, now unused
            if f'"#/components/schemas/{name}"' not in json.dumps(document):
                schemas.pop(name, None)
        return document

    return openapi
