"""The SDK in-process: the server's operations called directly over the local ledger.

The caller is the local user, owner of the chosen sandbox (whoever can open the database
file can read it anyway). Request bodies are validated by the same wire models as the
server's; streams poll the ledger, since no server's live bus is there to push.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from cairn.api import table
from cairn.api.operations import Caller
from cairn.client.transport import StreamEvent
from cairn.domain.keys import Principal
from cairn.errors import NotFound
from cairn.services.app import App

POLL_S = 0.1


class LocalTransport:
    """Synchronous in-process transport over ``app``: each call runs the operation of the
    table (``cairn.api.table.call``) as the local user."""

    def __init__(self, app: App, sandbox: str = "default") -> None:
        self.app = app
        self.sandbox = sandbox

    @property
    def caller(self) -> Caller:
        """The local user: owner of the sandbox."""
        return Caller(self.app, Principal(self.sandbox, "owner"))

    def call(
        self, operation: str, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        """Run the operation the server would run, here."""
        return table.call(operation, self.caller, params, body)

    def stream(
        self, operation: str, params: Mapping[str, Any], *, last_event_id: str | None = None
    ) -> Iterator[StreamEvent]:
        """Run streams by polling the ledger (the CLI without a server)."""
        op = table.operation(operation)
        path, _ = table.split_params(op, params)
        if op.name == "stream_run":
            return self._run_stream(path["run_id"], int(last_event_id or 0))
        if op.name == "stream_agent_runs":
            return self._agent_stream(path["slug"], last_event_id)
        raise NotFound(f"{operation!r} is not a stream")

    def _run_stream(self, run_id: str, last: int) -> Iterator[StreamEvent]:
        """The server's run stream (``cairn.api.streams.follow_run``), followed on an event
        loop of its own in a worker thread."""
        from anyio.from_thread import start_blocking_portal

        from cairn.api.streams import follow_run

        with start_blocking_portal() as portal:
            frames = follow_run(self.app, self.sandbox, run_id, last)
            while (frame := portal.call(anext, frames, None)) is not None:
                yield StreamEvent(*frame)

    def _agent_stream(self, slug: str, last_seen: str | None) -> Iterator[StreamEvent]:
        from cairn.runner.bus import run_summary
        from cairn.services import runs as run_service

        seen: dict[str, str] = {}
        first = True
        while True:
            query = run_service.RunQuery(agent_slug=slug, limit=50)
            recent = run_service.list_runs(self.app, self.sandbox, query)
            for run in reversed(recent):
                known = seen.get(run.run_id)
                if known == run.status:
                    continue
                seen[run.run_id] = run.status
                live = run.status in ("queued", "running")
                newer = last_seen is None or run.run_id > last_seen
                if first and not live and not (last_seen is not None and newer):
                    continue  # history before following began
                yield StreamEvent(run.run_id, "run", run_summary(run))
            first = False
            time.sleep(POLL_S)

    def close(self) -> None:
        """Release the database."""
        self.app.close()
