"""In-process fan-out of live run events and run summaries (for SSE and ``--follow``).

The runner publishes every event here as it emits it, before it is written to the ledger,
so a live follower sees it at once. A follower of a live run gets the run's history from
the bus (not the database, which lags by up to a heartbeat) and then the live tail, with no
gap and no duplicate. A follower that cannot keep up is disconnected rather than slowing
the run: it reconnects with its last sequence number and resumes from the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from cairn.domain.runs import Run, RunEvent

SUBSCRIBER_BUFFER = 1000


@dataclass(slots=True)
class _LiveRun:
    history: list[RunEvent] = field(default_factory=list)
    subscribers: list[MemoryObjectSendStream[RunEvent]] = field(default_factory=list)


def run_summary(run: Run) -> dict[str, Any]:
    """What the per-agent tail shows of a run: enough to see it start and end."""
    return {
        "run_id": run.run_id,
        "agent_slug": run.agent_slug,
        "kind": run.kind,
        "trigger_id": run.trigger_id,
        "status": run.status,
        "outcome": run.outcome,
        "tokens_in": run.usage.tokens_in,
        "tokens_out": run.usage.tokens_out,
        "tool_calls": len(run.tool_calls),
        "duration_ms": run.duration_ms,
        "error_message": run.error_message,
        "created_at": run.created_at.isoformat() if run.created_at else None,
    }


def _send(streams: list[MemoryObjectSendStream[Any]], item: Any) -> None:
    """``item`` to each stream; a follower that is gone or cannot keep up is dropped."""
    for stream in list(streams):
        try:
            stream.send_nowait(item)
        except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            streams.remove(stream)
            stream.close()


class RunBus:
    """Live runs' events and per-agent summaries. One per process, used from one event loop."""

    def __init__(self) -> None:
        self._runs: dict[str, _LiveRun] = {}
        # Keyed by (sandbox, agent), and by (sandbox, None) for every agent of the sandbox.
        self._agents: dict[
            tuple[str, str | None], list[MemoryObjectSendStream[dict[str, Any]]]
        ] = {}

    def run_started(self, run: Run) -> None:
        """A run began executing here; its events will follow."""
        self._runs.setdefault(run.run_id, _LiveRun())
        self.summary(run)

    def publish(self, run_id: str, event: RunEvent) -> None:
        """One event of a live run, to its history and every follower."""
        live = self._runs.get(run_id)
        if live is None:
            return
        live.history.append(event)
        _send(live.subscribers, event)

    def run_finished(self, run: Run) -> None:
        """The run is final and in the ledger: close its followers' streams."""
        live = self._runs.pop(run.run_id, None)
        if live is not None:
            for stream in live.subscribers:
                stream.close()
        self.summary(run)

    def follow_run(
        self, run_id: str, after_seq: int
    ) -> tuple[list[RunEvent], MemoryObjectReceiveStream[RunEvent]] | None:
        """History after ``after_seq`` and a stream of what comes next, or ``None`` when the
        run is not live here (then the ledger has everything, or another process runs it)."""
        live = self._runs.get(run_id)
        if live is None:
            return None
        send, receive = anyio.create_memory_object_stream[RunEvent](SUBSCRIBER_BUFFER)
        live.subscribers.append(send)
        return [e for e in live.history if e.seq > after_seq], receive

    def summary(self, run: Run) -> None:
        """Tell the agent's followers, and the sandbox's, about a run's new status."""
        data = run_summary(run)
        for key in ((run.sandbox_id, run.agent_id), (run.sandbox_id, None)):
            _send(self._agents.get(key, []), data)

    def follow_agent(
        self, sandbox_id: str, agent_id: str | None
    ) -> MemoryObjectReceiveStream[dict[str, Any]]:
        """A stream of run summaries for one agent (every agent of the sandbox, agents
        created later included, for ``None``), from now on."""
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](SUBSCRIBER_BUFFER)
        self._agents.setdefault((sandbox_id, agent_id), []).append(send)
        return receive

    def forget_agent_followers(self, sandbox_id: str, agent_id: str | None) -> None:
        """Drop the agent's followers that went away (receiving end closed). Called when a
        tail disconnects: an agent that rarely runs would otherwise keep them forever."""
        key = (sandbox_id, agent_id)
        for stream in list(self._agents.get(key, [])):
            if stream.statistics().open_receive_streams == 0:
                self._agents[key].remove(stream)
                stream.close()
        if not self._agents.get(key, True):
            del self._agents[key]
