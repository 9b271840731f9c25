"""The HTTP routes under ``/api/v1``, built from the operation table (``cairn.api.table``).

Each operation becomes one route with its declared response model, status code and
problems, so the OpenAPI document is complete; bodies and query parameters are validated
by the wire models before anything runs, then the call goes through ``table.invoke`` (the
role check, then the handler), as it does in-process. A blocking handler gets a plain
``def`` endpoint, which FastAPI runs in its thread pool; an async one runs on the loop.
Streams are declared in the table too, and served by ``cairn.api.streams``.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query

from cairn.api import table
from cairn.api.dependencies import CallerDep, KeyCallerDep
from cairn.api.operations import Caller
from cairn.api.problems import problem_responses
from cairn.telemetry.context import valid_traceparent

# The caller's W3C trace context; a malformed one is ignored, never refused.
TraceparentDep = Annotated[str | None, Header(include_in_schema=True)]


def operation_routes() -> APIRouter:
    """Every operation of the table that is not a stream, as a route."""
    router = APIRouter(prefix=table.PREFIX)
    for op in table.OPERATIONS_LIST:
        if op.stream:
            continue
        router.add_api_route(
            op.path,
            _endpoint(op),
            methods=[op.method],
            name=op.name,
            response_model=table.resolve(op.response),
            status_code=op.status,
            responses=problem_responses(*op.problems),
            tags=[op.tag],
            description=op.doc,
        )
    return router


def _endpoint(op: table.Operation) -> Any:
    """A FastAPI endpoint for ``op``: its signature (read by FastAPI) declares the caller,
    the path fields, the body, the query model and the ``traceparent`` header."""
    kind = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter("caller", kind, annotation=CallerDep if op.sandboxed else KeyCallerDep)
    ]
    parameters += [inspect.Parameter(name, kind, annotation=str) for name in op.path_params]
    if op.body is not None:
        parameters.append(inspect.Parameter("body", kind, annotation=table.resolve(op.body)))
    if op.query is not None:
        query = Annotated[table.resolve(op.query), Query()]  # type: ignore[valid-type]
        parameters.append(inspect.Parameter("query", kind, annotation=query))
    if op.traceparent:
        parameters.append(
            inspect.Parameter("traceparent", kind, annotation=TraceparentDep, default=None)
        )

    def arguments(values: dict[str, Any]) -> dict[str, Any]:
        given = {name: values[name] for name in op.path_params}
        if op.body is not None:
            given["body"] = values["body"]
        if op.query is not None:
            given.update(dict(values["query"]))
        if op.traceparent:
            given["traceparent"] = valid_traceparent(values["traceparent"])
        return given

    if inspect.iscoroutinefunction(op.handler):

        async def endpoint(caller: Caller, **values: Any) -> Any:
            return await table.invoke(op, caller, arguments(values))

    else:

        def endpoint(caller: Caller, **values: Any) -> Any:  # type: ignore[misc]
            return table.invoke(op, caller, arguments(values))

    endpoint.__name__ = op.name
    endpoint.__doc__ = op.doc
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return endpoint
