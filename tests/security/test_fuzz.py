"""Schemathesis against a live server, every operation, a bounded number of cases each:
no 5xx, every answer as the OpenAPI document says, valid requests accepted (the document
declares what the server enforces), and invalid ones refused. On top of the schema's own
cases, every operation that takes a body gets deep-nesting and oversize bodies drawn by
Hypothesis, which must be refused with a 4xx naming the limit.

The endless live streams (``…/stream``) are left out: a fuzzer's GET would wait on them
forever; ``tests/api/test_streams_api.py`` covers them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from cairn.domain.limits import MAX_DEPTH, MAX_REQUEST_BYTES
from tests.security.conftest import Site

CASES_PER_OPERATION = 5


@pytest.fixture(scope="module")
def api_schema(site: Site) -> Any:
    """The live server's own OpenAPI document."""
    from schemathesis.config import SchemathesisConfig

    # A body over the request limit is refused with 413, whatever the schema says of each
    # field: it is one of the expected refusals, for valid and invalid data alike.
    config = SchemathesisConfig.from_dict(
        {
            "checks": {
                "negative_data_rejection": {
                    "expected-statuses": [
                        *("400", "401", "403", "404", "405", "406", "409", "413"),
                        *("415", "422", "428", "429"),
                    ]
                },
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "413", "429"]
                },
            }
        }
    )
    loaded = schemathesis.openapi.from_url(f"{site.url}/openapi.json", config=config)
    return loaded.exclude(path_regex=r".*/stream$")


@pytest.fixture(scope="module")
def owner_headers(site: Site) -> dict[str, str]:
    """An owner key of ``default`` (a fuzzed ``{sandbox}`` is mostly not theirs: 404)."""
    return {"Authorization": f"Bearer {site.keys.owner}"}


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_operation_keeps_to_its_contract(
    api_schema: Any, owner_headers: dict[str, str], mode: str
) -> None:
    """Each operation, ``CASES_PER_OPERATION`` valid (then invalid) requests; every
    failure of every operation is reported at once."""
    generation = schemathesis.GenerationMode(mode)
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 40
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=generation))
        @settings(
            max_examples=CASES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.generate],
        )
        def call(case: Any) -> None:
            case.call_and_validate(headers=owner_headers, timeout=20)

        try:
            call()
        except Unsatisfiable:
            continue  # nothing about it can be made invalid (``/healthz``): no negative case
        except (Exception, BaseExceptionGroup) as failure:
            failures.append(f"{operation.label}: {str(failure)[:600]}")
    assert not failures, "\n\n".join(failures)


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


@st.composite
def hostile_bodies(draw: st.DrawFn) -> tuple[bytes, int]:
    """A body nested past the limit, or one over the size limit, with the status due."""
    if draw(st.booleans()):
        levels = draw(st.integers(min_value=MAX_DEPTH + 1, max_value=3_000))
        import json

        text = (
            json.dumps(_deep(min(levels, 900))) if levels <= 900 else ("[" * levels + "]" * levels)
        )
        return text.encode(), 400
    extra = draw(st.integers(min_value=1, max_value=200_000))
    return b'{"x": "' + b"y" * (MAX_REQUEST_BYTES + extra) + b'"}', 413


@pytest.fixture(scope="module")
def body_operations(site: Site) -> Iterator[list[tuple[str, str]]]:
    """``(method, path)`` of every operation with a body, ``default``'s paths filled in."""
    with site.http(site.keys.owner) as http:
        document = http.get("/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                filled = path.replace("{sandbox}", "default")
                while "{" in filled:
                    start = filled.index("{")
                    filled = filled[:start] + "x" + filled[filled.index("}", start) + 1 :]
                found.append((method.upper(), filled))
    yield found


def test_deep_and_oversize_bodies_are_refused_on_every_operation(
    site: Site, body_operations: list[tuple[str, str]]
) -> None:
    with site.http(site.keys.owner) as http:

        @given(body=hostile_bodies(), index=st.integers(0, len(body_operations) - 1))
        @settings(max_examples=40, deadline=None, database=None)
        def probe(body: tuple[bytes, int], index: int) -> None:
            method, path = body_operations[index]
            content, status = body
            response = http.request(
                method, path, content=content, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == status, (method, path, response.text[:200])
            assert "limit" in response.json()["detail"]

        probe()
    with site.http(site.keys.owner) as http:
        assert http.get("/api/v1/sandboxes/default/runs").status_code == 200


def test_the_fuzzer_is_bounded(body_operations: list[tuple[str, str]]) -> None:
    assert CASES_PER_OPERATION <= 10 and len(body_operations) > 10
    assert httpx  # the raw client the hostile bodies go through
