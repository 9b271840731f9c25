"""The SDK over HTTP (httpx), with SSE streams that reconnect and resume by themselves."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse, connect_sse

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


class _Resume:
    """A followed stream across its reconnections: the last event id seen (sent back as
    ``Last-Event-ID``), and how long reconnecting has failed (a server restart)."""

    def __init__(self, base_url: httpx.URL, last: str | None) -> None:
        self.base_url = base_url
        self.last = last
        self.failing_since: float | None = None
        self.delay = 0.1

    def request(self) -> dict[str, Any]:
        """``connect_sse``'s keyword arguments for the next connection."""
        headers = {"Last-Event-ID": self.last} if self.last is not None else {}
        return {"headers": headers, "timeout": None}

    def connected(self) -> None:
        """The server answered: the next failure starts a new countdown."""
        self.failing_since, self.delay = None, 0.1

    def event(self, sse: ServerSentEvent) -> StreamEvent:
        """``sse`` as the SDK's event (its data decoded from JSON), remembered to resume
        after, unless it is the ``end`` marker."""
        try:
            data = json.loads(sse.data)
        except ValueError:
            data = sse.data
        if sse.id and sse.event != "end":
            self.last = sse.id
        return StreamEvent(sse.id or self.last, sse.event, data)

    def failed(self) -> float:
        """The connection broke or was refused: how long to wait before trying again, or
        ``CairnError`` once that has failed for ``RECONNECT_FOR_S``."""
        now = time.monotonic()
        self.failing_since = self.failing_since or now
        if now - self.failing_since > RECONNECT_FOR_S:
            raise CairnError(
                f"lost the stream from {self.base_url} and could not "
                f"reconnect for {RECONNECT_FOR_S:g} s"
            ) from None
        delay, self.delay = self.delay, min(self.delay * 2, 2.0)
        return delay


def _client_options(base_url: str, api_key: str | None, timeout: float) -> dict[str, Any]:
    """The httpx client's settings: the server, the key as a bearer token, the timeout."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return {"base_url": base_url.rstrip("/"), "headers": headers, "timeout": timeout}


def _unreachable(client: httpx.Client | httpx.AsyncClient, exc: httpx.HTTPError) -> CairnError:
    return CairnError(f"cannot reach the Cairn server at {client.base_url}: {exc}")


class HttpTransport:
    """Synchronous transport to a Cairn server."""

    def __init__(
        self, base_url: str, api_key: str | None, sandbox: str = "default", timeout: float = 60.0
    ) -> None:
        self.sandbox = sandbox
        self._client = httpx.Client(**_client_options(base_url, api_key, timeout))

    def call(
        self, operation: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """One call; network failures become a one-line ``CairnError``."""
        method, url, query = _request(self.sandbox, operation, params)
        try:
            response = self._client.request(method, url, params=query, json=body)
        except httpx.HTTPError as exc:
            raise _unreachable(self._client, exc) from None
        return _decode(response)

    def stream(
        self, operation: str, params: Mapping[str, Any], *, last_event_id: str | None = None
    ) -> Iterator[StreamEvent]:
        """Follow an SSE stream; on a dropped connection, reconnect with ``Last-Event-ID``."""
        _, url, _ = _request(self.sandbox, operation, params)
        resume = _Resume(self._client.base_url, last_event_id)
        while True:
            try:
                with connect_sse(self._client, "GET", url, **resume.request()) as source:
                    if source.response.status_code >= 400:
                        source.response.read()
                        _decode(source.response)
                    resume.connected()
                    for sse in source.iter_sse():
                        event = resume.event(sse)
                        yield event
                        if event.event == "end":
                            return
            except httpx.TransportError:
                time.sleep(resume.failed())

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class AsyncHttpTransport:
    """Asynchronous transport to a Cairn server (for ``cairn.AsyncClient``)."""

    def __init__(
        self, base_url: str, api_key: str | None, sandbox: str = "default", timeout: float = 60.0
    ) -> None:
        self.sandbox = sandbox
        self._client = httpx.AsyncClient(**_client_options(base_url, api_key, timeout))

    async def call(
        self, operation: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """One call; network failures become a one-line ``CairnError``."""
        method, url, query = _request(self.sandbox, operation, params)
        try:
            response = await self._client.request(method, url, params=query, json=body)
        except httpx.HTTPError as exc:
            raise _unreachable(self._client, exc) from None
        return _decode(response)

    async def stream(
        self, operation: str, params: Mapping[str, Any], *, last_event_id: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Follow an SSE stream; on a dropped connection, reconnect with ``Last-Event-ID``."""
        import anyio

        _, url, _ = _request(self.sandbox, operation, params)
        resume = _Resume(self._client.base_url, last_event_id)
        while True:
            try:
                async with aconnect_sse(self._client, "GET", url, **resume.request()) as source:
                    if source.response.status_code >= 400:
                        await source.response.aread()
                        _decode(source.response)
                    resume.connected()
                    async for sse in source.aiter_sse():
                        event = resume.event(sse)
                        yield event
                        if event.event == "end":
                            return
            except httpx.TransportError:
                await anyio.sleep(resume.failed())

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
