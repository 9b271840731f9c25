"""The operation table is what the server serves: every operation is a route of the served
OpenAPI document with its declared status and response model, every ``/api/v1`` route of
the document is an operation of the table, and each operation's declaration fits its
handler (path fields and body are its parameters)."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import typing
from typing import Any

import pytest

from cairn.api import operations as ops
from cairn.api import table
from cairn.api.table import OPERATIONS, OPERATIONS_LIST, Operation
from tests.api.conftest import Deployment


@pytest.fixture(scope="module")
def openapi(deployment: Deployment) -> dict[str, Any]:
    """The served OpenAPI document."""
    response = deployment.http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _model_names(annotation: Any) -> set[str]:
    """The model classes a response type names (``list[X] | None`` -> ``{"X"}``)."""
    if isinstance(annotation, type) and annotation is not type(None):
        return {annotation.__name__}
    return {name for arg in typing.get_args(annotation) for name in _model_names(arg)}


def _refs(schema: Any) -> set[str]:
    return set(re.findall(r"#/components/schemas/(\w+)", repr(schema)))


@pytest.mark.parametrize("op", OPERATIONS_LIST, ids=lambda op: op.name)
def test_every_operation_is_served_with_its_declared_status_and_response_model(
    op: Operation, openapi: dict[str, Any]
) -> None:
    route = openapi["paths"].get(table.PREFIX + op.path, {}).get(op.method.lower())
    assert route is not None, f"{op.name}: {op.method} {op.path} is not in /openapi.json"
    if op.stream:
        assert "text/event-stream" in route["responses"]["200"]["content"]
        return
    answer = route["responses"][str(op.status)]["content"]["application/json"]["schema"]
    declared = table.resolve(op.response)
    assert _refs(answer) == _model_names(declared), op.name
    assert ('"array"' in json.dumps(answer)) == op.response.startswith("list["), op.name
    for code in op.problems:
        assert str(code) in route["responses"], f"{op.name} does not document {code}"
    if op.body is not None:
        body = route["requestBody"]["content"]["application/json"]["schema"]
        assert _refs(body) == {table.resolve(op.body).__name__}
    else:
        assert "requestBody" not in route, op.name


def test_every_api_route_of_the_document_comes_from_the_table(openapi: dict[str, Any]) -> None:
    declared = {(table.PREFIX + op.path, op.method.lower()) for op in OPERATIONS_LIST}
    served = {
        (path, method)
        for path, methods in openapi["paths"].items()
        if path.startswith(table.PREFIX + "/")
        for method in methods
    }
    assert served == declared


@pytest.mark.parametrize("op", OPERATIONS_LIST, ids=lambda op: op.name)
def test_each_declaration_fits_its_handler(op: Operation) -> None:
    if op.handler is None:
        return
    if op.handler in ops.SERVED:
        _fits_its_service(op, ops.SERVED[op.handler])
        return
    parameters = inspect.signature(op.handler).parameters
    assert next(iter(parameters)) == "caller"
    for name in op.path_params:
        assert name in parameters, f"{op.name}: the path field {name} is no handler argument"
    assert ("body" in parameters) == (op.body is not None), op.name
    assert ("traceparent" in parameters) == op.traceparent, op.name
    if op.query is not None:
        fields = set(table.resolve(op.query).model_fields)
        assert fields <= set(parameters), f"{op.name}: query fields the handler does not take"
    assert (op.role == "viewer") == (op.action == ""), f"{op.name}: a role needs its action"


def _fits_its_service(op: Operation, target: str) -> None:
    """A ``served`` handler passes the App, the sandbox, the path fields in order and the
    body's fields: the service takes each of them, and needs nothing more."""
    module, _, name = target.partition(":")
    parameters = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    positional = [p.name for p in parameters.values() if p.kind == p.POSITIONAL_OR_KEYWORD]
    given = positional[: 2 + len(op.path_params)]
    fields = set(table.resolve(op.body).model_fields) if op.body is not None else set()
    assert len(given) == 2 + len(op.path_params), f"{target} takes fewer path fields"
    assert fields <= set(parameters), f"{op.name}: body fields {target} does not take"
    required = {p.name for p in parameters.values() if p.default is p.empty}
    assert required <= {*given, *fields}, f"{target} needs more than {op.name} gives"
    assert op.query is None and not op.traceparent, op.name
    assert (op.role == "viewer") == (op.action == ""), f"{op.name}: a role needs its action"


def test_operations_are_named_once() -> None:
    assert len(OPERATIONS) == len(OPERATIONS_LIST)
    routes = [(op.method, op.path) for op in OPERATIONS_LIST]
    assert len(set(routes)) == len(routes)
