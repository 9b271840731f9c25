"""The SDK over HTTP (httpx), with SSE streams that reconnect and resume by themselves."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx

from cairn.api import table
from cairn.client.errors import error_from_problem
from cairn.client.transport import StreamEvent
from cairn.errors import CairnError

RECONNECT_FOR_S = 120.0
"""How long a stream keeps trying to reconnect (a server restart) before giving up."""


def _request(
    sandbox: str, operation: str, params: Mapping[str, Any] | None
) -> tuple[str, str, dict[str, Any]]:
    """The method, URL and query parameters of a call of ``operation``."""
    op = table.operation(operation)
    path, query = table.split_params(op, params)
    return op.method, op.url(sandbox, path), query


def _decode(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        raise error_from_problem(response.status_code, body)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


class _SSEParser:
    """Incremental ``text/event-stream`` parser (WHATWG rules for id, event, data)."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> StreamEvent | None:
        if line == "":
            if not self._data:
                self._event = "message"
                return None
            raw = "\n".join(self._data)
            event, self._event, self._data = self._event, "message", []
            try:
                data = json.loads(raw)
            except ValueError:
                data = raw
            return StreamEvent(self.last_id, event, data)
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            self.last_id = value
        elif field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        return None


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class HttpTransport:
    """Synchronous transport to a Cairn server."""

    def __init__(
        self, base_url: str, api_key: str | None, sandbox: str = "default", timeout: float = 60.0
    ) -> None:
        self.sandbox = sandbox
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=_headers(api_key), timeout=timeout
        )

    def call(
        self, operation: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """One call; network failures become a one-line ``CairnError``."""
        method, url, query = _request(self.sandbox, operation, params)
        try:
            response = self._client.request(method, url, params=query, json=body)
        except httpx.HTTPError as exc:
            raise CairnError(
                f"cannot reach the Cairn server at {self._client.base_url}: {exc}"
            ) from None
        return _decode(response)

    def stream(
        self, operation: str, params: Mapping[str, Any], *, last_event_id: str | None = None
    ) -> Iterator[StreamEvent]:
        """Follow an SSE stream; on a dropped connection, reconnect with ``Last-Event-ID``."""
        _, url, _ = _request(self.sandbox, operation, params)
        last = last_event_id
        failing_since: float | None = None
        delay = 0.1
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = last
            try:
                with self._client.stream("GET", url, headers=headers, timeout=None) as response:
                    if response.status_code >= 400:
                        response.read()
                        _decode(response)
                    failing_since, delay = None, 0.1
                    parser = _SSEParser()
                    parser.last_id = last
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        if event.id is not None and event.event != "end":
                            last = event.id
                        yield event
                        if event.event == "end":
                            return
            except (httpx.TransportError, httpx.RemoteProtocolError):
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > RECONNECT_FOR_S:
                    raise CairnError(
                        f"lost the stream from {self._client.base_url} and could not "
                        f"reconnect for {RECONNECT_FOR_S:g} s"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class AsyncHttpTransport:
    """Asynchronous transport to a Cairn server (for ``cairn.AsyncClient``)."""

    def __init__(
        self, base_url: str, api_key: str | None, sandbox: str = "default", timeout: float = 60.0
    ) -> None:
        self.sandbox = sandbox
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=_headers(api_key), timeout=timeout
        )

    async def call(
        self, operation: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """One call; network failures become a one-line ``CairnError``."""
        method, url, query = _request(self.sandbox, operation, params)
        try:
            response = await self._client.request(method, url, params=query, json=body)
        except httpx.HTTPError as exc:
            raise CairnError(
                f"cannot reach the Cairn server at {self._client.base_url}: {exc}"
            ) from None
        return _decode(response)

    async def stream(
        self, operation: str, params: Mapping[str, Any], *, last_event_id: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Follow an SSE stream; on a dropped connection, reconnect with ``Last-Event-ID``."""
        import anyio

        _, url, _ = _request(self.sandbox, operation, params)
        last = last_event_id
        failing_since: float | None = None
        delay = 0.1
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = last
            try:
                async with self._client.stream(
                    "GET", url, headers=headers, timeout=None
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        _decode(response)
                    failing_since, delay = None, 0.1
                    parser = _SSEParser()
                    parser.last_id = last
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        if event.id is not None and event.event != "end":
                            last = event.id
                        yield event
                        if event.event == "end":
                            return
            except (httpx.TransportError, httpx.RemoteProtocolError):
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > RECONNECT_FOR_S:
                    raise CairnError(
                        f"lost the stream from {self._client.base_url} and could not "
                        f"reconnect for {RECONNECT_FOR_S:g} s"
                    ) from None
                await anyio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
