"""``Client`` and ``AsyncClient`` expose the same operations: the same resources, the same
method names and signatures (the async ones awaited), each calling an operation of the
table."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

import cairn
from cairn.api.table import OPERATIONS
from cairn.client import sdk
from cairn.client.local import LocalTransport
from cairn.services.app import App


def _surface(client: object, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every public operation of a client, by dotted path, its sub-resources included."""
    for name in sorted(dir(client)):
        if name.startswith("_") and name != "__call__":
            continue
        value = getattr(client, name)
        if isinstance(value, sdk.Resource):
            if "__call__" in type(value).__dict__:
                yield prefix + name, cast(Any, value).__call__
            yield from _surface(value, f"{prefix}{name}.")
        elif name != "__call__" and callable(value) and name not in _LIFECYCLE:
            yield prefix + name, value


_LIFECYCLE = {"close", "aclose"}
"""How each client is closed differs by design (``with`` / ``async with``)."""


def test_client_and_async_client_expose_the_same_operations_with_the_same_signatures() -> None:
    sync = cairn.Client("http://127.0.0.1:9")
    asynchronous = cairn.AsyncClient("http://127.0.0.1:9")
    ours = dict(_surface(sync))
    theirs = dict(_surface(asynchronous))
    assert set(ours) == set(theirs)
    assert {"sources.list", "keys.create", "usage", "usage.thresholds"} <= set(theirs)
    for name, method in ours.items():
        assert inspect.signature(method) == inspect.signature(theirs[name]), name
        assert method.__doc__ == theirs[name].__doc__, name
    sync.close()


@pytest.mark.anyio
async def test_the_async_client_answers_with_coroutines_and_the_sync_one_with_results() -> None:
    calls: list[tuple[str, dict[str, Any], Any]] = []

    class Recording:
        sandbox = "default"

        def call(self, operation: str, params: Any = None, body: Any = None) -> Any:
            calls.append((operation, dict(params or {}), body))
            return {"agent_slug": "a", "cleared": True}

    class AsyncRecording(Recording):
        async def call(self, operation: str, params: Any = None, body: Any = None) -> Any:
            return Recording.call(self, operation, params, body)

    done = cairn.Client(transport=Recording()).usage.clear_threshold("a")  # type: ignore[arg-type]
    pending = cairn.AsyncClient(transport=AsyncRecording()).usage.clear_threshold("a")  # type: ignore[arg-type]
    assert inspect.isawaitable(pending)
    assert await pending == done
    assert calls == [("delete_threshold", {"slug": "a"}, None)] * 2


def test_every_sdk_method_calls_an_operation_of_the_table() -> None:
    source = Path(sdk.__file__).read_text()
    named = re.findall(r'(?:Call|Follow)\(\s*"(\w+)"', source)
    assert len(named) > 40
    assert set(named) <= set(OPERATIONS), set(named) - set(OPERATIONS)


def test_whoami_says_whose_the_caller_is(app: App) -> None:
    who = cairn.Client(transport=LocalTransport(app, "default")).whoami()
    assert (who.sandbox_id, who.role, who.key_id) == ("default", "owner", None)
