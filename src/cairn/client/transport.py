"""How the SDK reaches Cairn: one request/stream interface, two implementations.

``HttpTransport`` talks to a server (``CAIRN_URL``) with httpx; ``LocalTransport`` calls the
same operations as the server in this process, over the local ledger, so the CLI works with
no server started and starts fast. Both take API paths relative to
``/api/v1/sandboxes/{sandbox}`` and return decoded JSON; both raise ``cairn.errors``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event: ``id`` (run events: the seq; tails: the run id), name, data."""

    id: str | None
    event: str
    data: Any


class Transport(Protocol):
    """Synchronous transport."""

    sandbox: str

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Perform one API call; ``path`` is relative to the sandbox (``/agents``) or, when
        it starts with ``//``, to ``/api/v1`` (``//sandboxes``)."""
        ...

    def stream(self, path: str, *, last_event_id: str | None = None) -> Iterator[StreamEvent]:
        """Follow an SSE path, reconnecting and resuming by itself until the stream ends."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
