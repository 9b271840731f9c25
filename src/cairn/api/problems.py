"""Errors as problem+json (RFC 9457), in one place: the handlers that turn ``cairn.errors``
and validation failures into responses, the problems each route documents, and the OpenAPI
document saying so."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cairn import errors

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


def title_for(status: int) -> str:
    """The problem title of an HTTP status."""
    return _TITLES.get(status, "Error")


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


def add_problem_handlers(api: FastAPI) -> None:
    """Answer every error of ``api`` as problem+json and document it so."""
    api.add_exception_handler(errors.CairnError, _cairn_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(Exception, _unexpected)
    api.openapi = _openapi_with_problems(api)  # type: ignore[method-assign]


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
