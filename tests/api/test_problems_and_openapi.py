"""Errors are problem+json with a clear detail and the OpenAPI document is complete and
accurate: every route declares its response model and its problems, and no route answers
500 to bad input thrown at it (malformed JSON, unknown fields, wrong types, out-of-range
numbers, odd path values, odd headers)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.conftest import Deployment
from tests.api.helpers import problem_of, quick_settings

API = "/api/v1/sandboxes/default"
PROBLEM_REF = "#/components/schemas/Problem"


@pytest.fixture(scope="module")
def http(deployment: Deployment) -> Iterator[httpx.Client]:
    """Raw HTTP with the owner key."""
    with httpx.Client(
        base_url=deployment.url,
        headers={"Authorization": f"Bearer {deployment.keys.owner}"},
        timeout=20,
    ) as client:
        yield client


@pytest.fixture(scope="module")
def openapi(deployment: Deployment) -> dict[str, Any]:
    """The served OpenAPI document."""
    response = deployment.http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


# --- problem+json on bad input ---------------------------------------------------------


def test_a_body_that_is_not_json_is_a_422_problem(http: httpx.Client) -> None:
    response = http.post(
        f"{API}/agents", content=b'{"slug": "x", ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in problem_of(response)["detail"]


def test_a_missing_body_is_a_422_problem_that_says_the_body_is_missing(
    http: httpx.Client,
) -> None:
    response = http.post(f"{API}/agents")
    assert response.status_code == 422
    detail = problem_of(response)["detail"]
    assert "body" in detail.lower(), f"unclear detail: {detail!r}"


def test_an_unknown_field_is_a_422_problem_naming_it(http: httpx.Client) -> None:
    response = http.post(
        f"{API}/agents", json={"slug": "typo", "system_prompt": "x", "sytem_promt": "y"}
    )
    assert response.status_code == 422
    problem = problem_of(response)
    assert problem["error"] == "InvalidRequest"
    assert "sytem_promt" in problem["detail"]
    patch = http.patch(f"{API}/agents/anything", json={"colour": "red"})
    assert patch.status_code == 422
    assert "colour" in problem_of(patch)["detail"]


def test_a_field_of_the_wrong_type_is_a_422_problem_naming_it(http: httpx.Client) -> None:
    response = http.post(f"{API}/agents", json={"slug": "typed", "system_prompt": ["x"]})
    assert response.status_code == 422
    assert "system_prompt" in problem_of(response)["detail"]


@pytest.mark.parametrize("limit", ["0", "-3", "1001", "ten", "1.5", "9" * 40])
def test_a_bad_limit_is_a_422_problem_naming_the_parameter(http: httpx.Client, limit: str) -> None:
    response = http.get(f"{API}/runs", params={"limit": limit})
    assert response.status_code == 422
    assert "limit" in problem_of(response)["detail"]


@pytest.mark.parametrize(
    ("params", "status", "quoted"),
    [
        ({"status": "exploded"}, 422, "status"),
        ({"kind": "cron"}, 422, "kind"),
        ({"since": "forever"}, 400, "forever"),
        ({"since": "-1h"}, 400, "-1h"),
    ],
)
def test_a_bad_filter_is_a_problem_that_names_it(
    http: httpx.Client, params: dict[str, str], status: int, quoted: str
) -> None:
    response = http.get(f"{API}/runs", params=params)
    assert response.status_code == status
    assert quoted in problem_of(response)["detail"]


def test_an_unknown_route_or_method_is_a_problem_too(http: httpx.Client) -> None:
    missing = http.get(f"{API}/nothing-here")
    assert missing.status_code == 404
    problem_of(missing)
    wrong_method = http.delete(f"{API}/agents")
    assert wrong_method.status_code == 405
    problem_of(wrong_method)


# --- the OpenAPI document ------------------------------------------------------------------


def _operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def _schema_refs(schema: dict[str, Any]) -> set[str]:
    found = set()
    text = json.dumps(schema)
    for match in re.finditer(r'"\$ref": "([^"]+)"', text):
        found.add(match.group(1))
    return found


def test_the_openapi_document_declares_a_response_model_for_every_api_route(
    openapi: dict[str, Any],
) -> None:
    operations = [op for op in _operations(openapi) if op[1].startswith("/api/v1/")]
    assert len(operations) >= 28
    for method, path, operation in operations:
        success = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert success, f"{method} {path} declares no success response"
        for code, response in success.items():
            content = response.get("content", {})
            if path.endswith("/stream"):
                assert "text/event-stream" in content, (method, path)
                continue
            schema = content.get("application/json", {}).get("schema")
            assert schema and _schema_refs(schema), f"{method} {path} {code}: no response model"
        assert operation.get("summary") or operation.get("description"), (method, path)


def test_the_openapi_document_declares_the_problems_every_api_route_answers(
    openapi: dict[str, Any],
) -> None:
    problem_schema = openapi["components"]["schemas"]["Problem"]
    assert {"title", "status", "detail", "error"} <= set(problem_schema["required"])
    for method, path, operation in _operations(openapi):
        if not path.startswith("/api/v1/"):
            continue
        responses = operation["responses"]
        expected = {"401", "422"} | ({"404"} if "{" in path else set())
        assert expected <= set(responses), f"{method} {path}: {sorted(responses)}"
        for code, response in responses.items():
            if not code.startswith(("4", "5")):
                continue
            content = response.get("content", {})
            assert "application/problem+json" in content, (
                f"{method} {path} {code}: problems are served as application/problem+json "
                f"but documented as {sorted(content) or 'nothing'}"
            )
            assert _schema_refs(content["application/problem+json"]["schema"]) == {PROBLEM_REF}


# --- nothing answers 500 -------------------------------------------------------------------


@dataclass
class Probe:
    """One request of the bad-input matrix, and the documented route it goes to."""

    method: str
    template: str
    url: str
    params: dict[str, str] | None = None
    body: bytes | None = None
    headers: dict[str, bytes] | None = None

    def __str__(self) -> str:
        extra = f" params={self.params}" if self.params else ""
        extra += f" headers={self.headers}" if self.headers else ""
        extra += f" body={self.body[:100]!r}" if self.body is not None else ""
        return f"{self.method} {self.url[:100]}{extra}"


PATH_VALUES = ["nonexistent", "..%2F..", "%C3%BC-%C3%B1", "x" * 3000, "%00", "-"]
QUERY_VALUES = ["", "-1", "0", "9" * 40, "abc", "\x00", "9" * 400 + "s", "1.5"]
LAST_EVENT_IDS = [b"abc", b"-5", b"9" * 40, b"1e3", "\u0661\u00e9".encode()]
RAW_BODIES = [b"{not json", b"", b"null", b"[]", b'"text"', b"[" * 5000 + b"]" * 5000]
WRONG_VALUES: list[Any] = [
    None,
    10**30,
    -1,
    1.5,
    True,
    "\x00",
    "x" * 20_000,
    [],
    {"a": [{"b": [1, "\x00", None, 10**30]}]},
]


def _resolve(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        resolved: dict[str, Any] = openapi["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def _path(template: str, real: dict[str, str], param: str | None = None, value: str = "") -> str:
    """``template`` with real ids (or ``nonexistent``), and ``value`` in ``param``."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == param:
            return value
        return "default" if name == "sandbox" else real.get(name, "nonexistent")

    return re.sub(r"\{(\w+)\}", fill, template)


def _probes(openapi: dict[str, Any], real: dict[str, str]) -> Iterator[Probe]:
    """Bad path values, query values, Last-Event-IDs and bodies for every documented route;
    the other inputs of each request are plausible, so the bad one reaches the code."""
    for method, template, operation in _operations(openapi):
        body_schema = None
        if "requestBody" in operation:
            body_schema = next(iter(operation["requestBody"]["content"].values()))["schema"]
        resolved = _resolve(openapi, body_schema) if body_schema is not None else {}
        base = {name: "fuzz" for name in resolved.get("required", [])}
        base_body = json.dumps(base).encode() if body_schema is not None else None

        def probe(url: str, **extra: Any) -> Probe:
            return Probe(method, template, url, **({"body": base_body} | extra))  # noqa: B023

        for name in re.findall(r"\{(\w+)\}", template):
            for value in PATH_VALUES if name != "sandbox" else PATH_VALUES[:2]:
                yield probe(_path(template, real, name, value))
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                for value in QUERY_VALUES:
                    yield probe(_path(template, real), params={parameter["name"]: value})
        if template.endswith("/stream"):
            for header in LAST_EVENT_IDS:
                yield probe(_path(template, real), headers={"Last-Event-ID": header})
        if body_schema is None:
            continue
        url = _path(template, real)
        for raw in RAW_BODIES:
            yield probe(url, body=raw)
        yield probe(url, body=json.dumps(base | {"unexpected": 1}).encode())
        for field in resolved.get("properties", {}):
            for wrong in WRONG_VALUES:
                yield probe(url, body=json.dumps(base | {field: wrong}).encode())


def test_no_route_answers_500_to_bad_input_and_every_error_is_documented(
    deployment: Deployment, http: httpx.Client, openapi: dict[str, Any], slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings())
    run = client.agents.test(slug, event_payload={"n": 1})
    spare = client.keys.create("fuzz-spare", "viewer")
    real = {"slug": slug, "run_id": run.run_id, "ref": "builtin", "key_id": spare.key.key_id}
    failures: list[str] = []
    undocumented: set[str] = set()
    probes = list(_probes(openapi, real))
    assert len(probes) > 500
    for probe in probes:
        headers = {name.encode(): value for name, value in (probe.headers or {}).items()}
        if probe.body is not None:
            headers[b"Content-Type"] = b"application/json"
        try:
            with http.stream(
                probe.method, probe.url, params=probe.params, content=probe.body, headers=headers
            ) as response:
                # The agent tail never ends by design: that it answered is what is checked.
                endless = probe.url.endswith("/runs/stream") and response.status_code == 200
                text = "" if endless else response.read().decode(errors="replace")
        except httpx.HTTPError as exc:
            failures.append(f"{probe}: the connection broke ({type(exc).__name__}: {exc})")
            continue
        status = response.status_code
        content_type = response.headers.get("content-type", "")
        if status >= 500:
            failures.append(f"{probe}: {status} {text[:200]}")
        elif status >= 400 and not content_type.startswith("application/problem+json"):
            failures.append(f"{probe}: {status} is not problem+json: {text[:200]}")
        elif (
            probe.url.endswith("/stream")
            and status == 200
            and not endless
            and not text.rstrip().split("\n\n")[-1].startswith("event: end")
        ):
            failures.append(f"{probe}: the stream broke off: {text[-200:]!r}")
        declared = openapi["paths"][probe.template][probe.method.lower()]["responses"]
        if status >= 400 and str(status) not in declared:
            undocumented.add(f"{probe.method} {probe.template} answers {status}: {text[:150]}")
    assert not failures, f"{len(failures)} of {len(probes)} probes failed:\n" + "\n".join(failures)
    assert not undocumented, "undocumented errors:\n" + "\n".join(sorted(undocumented))
    assert client.agents.test(slug).status == "succeeded", "the server still fires runs"
