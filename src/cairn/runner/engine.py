"""Executes runs and keeps their ledger rows honest.

Whatever happens — a tool raises, the backend raises, ``max_turns`` or ``timeout_s`` is
hit, the run is cancelled — the row ends final with an error message, because the final
write sits in a ``finally`` that no exception of the run can skip. While a run is live a
heartbeat task flushes new events and touches ``heartbeat_at``, so a hung tool call is
visible; for a run claimed by a worker that heartbeat is the worker's lease, and a run
whose lease expired is ended by ``reap_stale_runs``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Required, TypedDict, Unpack

import anyio

from cairn.batches import LoopBatch
from cairn.domain.agents import Agent
from cairn.domain.runs import (
    Run,
    RunEvent,
    RunEventKind,
    RunKind,
    ToolCall,
    decide_outcome,
)
from cairn.domain.sources import DataSource
from cairn.errors import (
    CairnError,
    MaxTurnsExceeded,
    ModelError,
    RunFailure,
    RunTimedOut,
    ToolFailure,
)
from cairn.ids import new_id
from cairn.models.backends import model_backends
from cairn.models.base import (
    Credentials,
    EnvCredentials,
    Message,
    ModelBackend,
    ModelRequest,
    TextDelta,
    ToolCallRequest,
    ToolResultMessage,
    TurnEnd,
)
from cairn.pricing import PriceTable
from cairn.runner.bus import RunBus
from cairn.runner.messages import render_event_message
from cairn.runner.observers import RunObserver, TurnTimer
from cairn.store import Store
from cairn.store import runs as run_store
from cairn.text import record
from cairn.tools.base import ToolContext, ToolOutput
from cairn.tools.pool import SessionPool
from cairn.tools.resolution import ResolvedTools, resolve_tools


class _Heartbeat:
    """Calls ``Runner.beat`` every ``heartbeat_s`` while a run is live.

    A loop timer rather than a task: most runs end long before the first beat, and a timer
    costs them nothing but scheduling, where a task group per run cost a measurable share
    of a scripted run. Store writes are synchronous, so a beat never interleaves with
    another write of the run. (Cairn runs on asyncio; the MCP client needs it too.)"""

    def __init__(self, runner: Runner, recorder: _Recorder) -> None:
        self._runner = runner
        self._recorder = recorder
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(runner.heartbeat_s, self._beat)

    def _beat(self) -> None:
        self._runner.beat(self._recorder)
        self._handle = self._loop.call_later(self._runner.heartbeat_s, self._beat)

    def stop(self) -> None:
        """No more beats (the final write follows)."""
        self._handle.cancel()


@dataclass(slots=True)
class _Recorder:
    """Numbers a run's events, hands them to live followers at once, and remembers which
    are not yet written to the ledger."""

    run: Run
    bus: RunBus | None = None
    next_seq: int = 1
    pending: list[RunEvent] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    history: list[RunEvent] | None = None  # every event, kept only for an observer
    response_model: str | None = None  # the model that answered the last turn, if told
    retries: int = 0
    """Retries of the model turn that finally failed (0 when none was retried)."""
    reason: str | None = None  # the failure's reason (``ModelError.reason``), if it gave one

    def emit(self, kind: RunEventKind, data: dict[str, Any]) -> None:
        event = RunEvent(self.next_seq, kind, data, datetime.now(UTC))
        self.pending.append(event)
        self.next_seq += 1
        if self.history is not None:
            self.history.append(event)
        if self.bus is not None:
            self.bus.publish(self.run.run_id, event)

    def take(self) -> list[RunEvent]:
        events, self.pending = self.pending, []
        return events


class FireOptions(TypedDict, total=False):
    """What a fire's row says of its cause: keyword arguments of ``Runner.new_run``."""

    kind: Required[RunKind]
    trigger_id: str | None
    replay_of: str | None
    traceparent: str | None


class Runner:
    """Fires agents in this process. One per process; safe to share between tasks."""

    def __init__(
        self,
        store: Store,
        tool_context: ToolContext,
        *,
        credentials: Callable[[str], Credentials] | None = None,
        prices: PriceTable | None = None,
        bus: RunBus | None = None,
        heartbeat_s: float = 0.5,
        max_model_retries: int = 3,
        retry_base_s: float = 0.5,
        retry_cap_s: float = 60.0,
        observer: RunObserver | None = None,
    ) -> None:
        self.store = store
        self.tool_context = tool_context
        self.tool_pool: SessionPool | None = None  # set by the server: warm MCP sessions
        self.credentials = credentials or (lambda _sandbox_id: EnvCredentials())
        self.prices = prices
        self.bus = bus
        self.heartbeat_s = heartbeat_s
        self.max_model_retries = max_model_retries
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self.observer = observer
        self._live: dict[str, anyio.CancelScope] = {}
        self._cancel_reasons: dict[str, str] = {}  # run_id -> why it was cancelled
        self._final_writes: LoopBatch[tuple[Run, list[RunEvent]], None] = LoopBatch(
            self._write_final
        )

    def _write_final(self, finishes: list[tuple[Run, list[RunEvent]]]) -> list[None]:
        """The final rows of the runs that ended in one turn of the event loop, in one
        transaction (``run_store.finish_runs``): under load, runs end together."""
        with self.store.begin() as conn:
            run_store.finish_runs(conn, finishes)
        return [None] * len(finishes)

    def new_run(
        self,
        agent: Agent,
        event_payload: Any,
        *,
        kind: RunKind,
        trigger_id: str | None = None,
        start_now: bool = True,
        replay_of: str | None = None,
        traceparent: str | None = None,
    ) -> Run:
        """The row of an accepted fire, not yet written (the caller writes it in its own
        transaction, with the event and decisions that caused it). ``traceparent`` is the
        caller's W3C trace context, kept so the run's exported trace joins the caller's."""
        now = datetime.now(UTC)
        return Run(
            run_id=new_id("run"),
            sandbox_id=agent.sandbox_id,
            agent_id=agent.agent_id,
            agent_slug=agent.slug,
            agent_version=agent.version,
            kind=kind,
            status="running" if start_now else "queued",
            event_payload=event_payload,
            trigger_id=trigger_id if kind == "trigger" else None,
            model=f"{agent.model_settings.backend}:{agent.model_settings.model}",
            created_at=now,
            started_at=now if start_now else None,
            heartbeat_at=now,
            replay_of=replay_of,
            traceparent=traceparent,
        )

    def accept(
        self,
        agent: Agent,
        event_payload: Any,
        *,
        start_now: bool = True,
        **options: Unpack[FireOptions],
    ) -> Run:
        """Write the run row for a fire that was accepted; it exists before anything runs."""
        run = self.new_run(agent, event_payload, start_now=start_now, **options)
        with self.store.begin() as conn:
            run_store.create_run(conn, run)
        if self.bus is not None:
            self.bus.summary(run)
        return run

    def cancel(self, run_id: str, reason: str | None = None) -> bool:
        """Cancel a run live in this process (``reason`` goes into its error message);
        ``False`` if it is not running here."""
        scope = self._live.get(run_id)
        if scope is None:
            return False
        if reason is not None:
            self._cancel_reasons[run_id] = reason
        scope.cancel()
        return True

    async def execute(self, run: Run, agent: Agent, available: list[DataSource]) -> Run:
        """Run an accepted fire to its end and write the final row. Never raises for the run's
        sake (only ``BaseException``s such as KeyboardInterrupt pass, after the row is written)."""
        started = time.perf_counter()
        if run.started_at is None:
            run.started_at = datetime.now(UTC)
        run.status = "running"
        run.heartbeat_at = datetime.now(UTC)
        recorder = _Recorder(run, self.bus)
        if self.observer is not None:
            recorder.history = []
        scope = anyio.CancelScope()
        self._live[run.run_id] = scope
        if self.bus is not None:
            self.bus.run_started(run)
        final_stop = "end_turn"
        heartbeat = _Heartbeat(self, recorder)
        try:
            with scope:
                final_stop = await self._guarded_turns(run, agent, available, recorder)
            if scope.cancelled_caught:
                run.status = "cancelled"
                run.error_type = "cancelled"
                run.error_message = self._cancel_reasons.pop(
                    run.run_id, "the run was cancelled before it finished"
                )
        finally:
            heartbeat.stop()
            self._live.pop(run.run_id, None)
            with anyio.CancelScope(shield=True):  # the final row is written, whatever
                await self._finalise(run, recorder, started, final_stop, agent)
        return run

    async def fire(
        self,
        agent: Agent,
        event_payload: Any,
        available: list[DataSource],
        *,
        kind: RunKind,
        trigger_id: str | None = None,
    ) -> Run:
        """Accept and execute in one call (synchronous test fires, the CLI, the benchmark)."""
        run = self.accept(agent, event_payload, kind=kind, trigger_id=trigger_id)
        return await self.execute(run, agent, available)

    async def _guarded_turns(
        self, run: Run, agent: Agent, available: list[DataSource], recorder: _Recorder
    ) -> str:
        """The turns, with every failure turned into the row's status and error."""
        try:
            stop = await self._run_turns(run, agent, available, recorder)
        except CairnError as error:
            run.status = "failed"
            run.error_type = getattr(error, "error_type", "usage_error")
            run.error_message = str(error)
            recorder.reason = getattr(error, "reason", None)
        except Exception as exc:  # a bug must still leave a complete row
            run.status = "failed"
            run.error_type = "internal_error"
            run.error_message = f"internal error: {type(exc).__name__}: {exc}"
        else:
            run.status = "succeeded"
            return stop
        return "error"

    def beat(self, recorder: _Recorder) -> None:
        """Write progress, and honour a cancel asked by another process (see ``_Heartbeat``)."""
        run = recorder.run
        run.heartbeat_at = datetime.now(UTC)
        events = recorder.take()
        try:
            with self.store.begin() as conn:
                run_store.save_progress(conn, run, events)
                cancel_asked = run_store.cancel_requested(conn, run.run_id)
        except CairnError:
            # A missed heartbeat is retried by the next one; the events stay queued.
            recorder.pending[:0] = events
            return
        if cancel_asked:
            self.cancel(run.run_id)

    async def _finalise(
        self, run: Run, recorder: _Recorder, started: float, stop: str, agent: Agent
    ) -> None:
        now = datetime.now(UTC)
        run.finished_at = now
        run.heartbeat_at = now
        run.duration_ms = (time.perf_counter() - started) * 1000
        trace = run.tool_resolution_trace
        run.outcome = decide_outcome(
            status=run.status,
            advertised=len(trace.tool_names_advertised) if trace else 0,
            tool_calls=run.tool_calls,
            output_text=run.output_text,
        )
        if self.prices is not None and run.model:
            run.cost_micros = self.prices.cost_micros(run.model, run.usage)
        usage = record(run.usage)
        if run.status == "succeeded":
            recorder.emit("finish", {"stop_reason": stop, "usage": usage, "turns": recorder.turns})
        else:
            # The facts diagnosis needs, as data: it never parses them out of the message.
            settings = agent.model_settings
            recorder.emit(
                "error",
                {
                    "message": run.error_message,
                    "error_type": run.error_type,
                    "reason": recorder.reason,
                    "retries": recorder.retries,
                    "limits": {
                        "max_turns": settings.max_turns,
                        "timeout_s": settings.timeout_s,
                        "max_model_retries": self.max_model_retries,
                    },
                    "usage": usage,
                    "turns": recorder.turns,
                },
            )
        await self._final_writes.submit((run, recorder.take()))
        if self.bus is not None:
            self.bus.run_finished(run)
        if recorder.history is not None and self.observer is not None:
            self.observer.run_finished(run, recorder.history)

    async def _run_turns(
        self, run: Run, agent: Agent, available: list[DataSource], recorder: _Recorder
    ) -> str:
        settings = agent.model_settings
        # Our own deadline, told apart from any TimeoutError a backend or a tool raises.
        with anyio.move_on_after(settings.timeout_s) as deadline:
            return await self._turns(run, agent, available, recorder)
        assert deadline.cancelled_caught
        raise RunTimedOut(
            f"the run exceeded timeout_s={settings.timeout_s:g} s{_where(run)}; "
            "raise timeout_s or find the slow step in the events"
        )

    async def _turns(
        self, run: Run, agent: Agent, available: list[DataSource], recorder: _Recorder
    ) -> str:
        settings = agent.model_settings
        backend = self._backend(agent)
        async with resolve_tools(
            selection=agent.tool_sources,
            allowlist=agent.tool_allowlist,
            available=available,
            context=self.tool_context,
            pool=self.tool_pool,
        ) as tools:
            run.tool_resolution_trace = tools.trace
            messages = [Message("user", render_event_message(run.event_payload))]
            for turn in range(settings.max_turns):
                with TurnTimer(recorder.turns, turn, run.usage) as timed:
                    request = ModelRequest(
                        system=agent.system_prompt,
                        messages=list(messages),
                        tools=tools.specs,
                        settings=agent.model_settings,
                        turn=turn,
                        event_payload=run.event_payload,
                    )
                    text, calls, stop = await self._model_turn_with_retries(
                        backend, request, run, recorder
                    )
                    timed.done(stop, calls, recorder.response_model)
                messages.append(Message("assistant", text, tuple(calls)))
                if text:
                    run.output_text = text
                if not calls:
                    return stop
                results = [await self._call_tool(tools, call, run, recorder) for call in calls]
                messages.append(Message("tool", tool_results=tuple(results)))
            raise MaxTurnsExceeded(
                f"the model still asked for tools after max_turns={settings.max_turns} turns; "
                "raise max_turns or tell the prompt when to stop"
            )

    def _backend(self, agent: Agent) -> ModelBackend:
        name = agent.model_settings.backend
        try:
            factory = model_backends.get(name)
        except CairnError:
            raise ModelError(
                f"model backend {name!r} is not available in this installation "
                f"(installed: {', '.join(model_backends.names())})",
                backend=name,
            ) from None
        return factory(agent.model_settings, self.credentials(agent.sandbox_id))

    async def _model_turn_with_retries(
        self, backend: ModelBackend, request: ModelRequest, run: Run, recorder: _Recorder
    ) -> tuple[str, list[ToolCallRequest], str]:
        """A model turn, retried with exponential backoff on retryable errors (rate limits,
        5xx, dropped connections), honouring the provider's retry-after; each retry is a
        ``retry`` event so a slow run explains itself."""
        attempt = 0
        while True:
            try:
                return await self._model_turn(backend, request, run, recorder)
            except ModelError as error:
                if not error.retryable or attempt >= self.max_model_retries:
                    recorder.retries = attempt  # the error event says it, as a number
                    raise
                attempt += 1
                wait = self.retry_base_s * 2 ** (attempt - 1)
                if error.retry_after_s is not None:
                    wait = max(wait, error.retry_after_s)
                wait = min(wait, self.retry_cap_s)
                recorder.emit(
                    "retry",
                    {
                        "attempt": attempt,
                        "reason": error.reason,
                        "status_code": error.status_code,
                        "wait_s": wait,
                        "message": error.message,
                        "turn": request.turn,
                    },
                )
                await anyio.sleep(wait)

    async def _model_turn(
        self, backend: ModelBackend, request: ModelRequest, run: Run, recorder: _Recorder
    ) -> tuple[str, list[ToolCallRequest], str]:
        text_parts: list[str] = []
        calls: list[ToolCallRequest] = []
        stop = "end_turn"
        try:
            async for event in backend.stream(request):
                if isinstance(event, TextDelta):
                    text_parts.append(event.text)
                    recorder.emit("text", {"delta": event.text, "turn": request.turn})
                elif isinstance(event, ToolCallRequest):
                    calls.append(event)
                elif isinstance(event, TurnEnd):
                    stop = event.stop_reason
                    run.usage.add(event.usage)
                    recorder.response_model = event.model
        except RunFailure:
            raise
        except TimeoutError as exc:
            raise ModelError(
                f"model backend {backend.name!r} timed out: {exc or 'no answer in time'}",
                backend=backend.name,
                reason="timeout",
            ) from exc
        except Exception as exc:
            raise ModelError(
                f"model backend {backend.name!r} raised {type(exc).__name__}: {exc}",
                backend=backend.name,
            ) from exc
        return "".join(text_parts), calls, stop

    async def _call_tool(
        self, tools: ResolvedTools, call: ToolCallRequest, run: Run, recorder: _Recorder
    ) -> ToolResultMessage:
        recorder.emit(
            "tool_call", {"call_id": call.call_id, "name": call.name, "arguments": call.arguments}
        )
        record = ToolCall(call.call_id, call.name, call.arguments)
        run.tool_calls.append(record)
        started = time.perf_counter()
        if not tools.is_advertised(call.name):
            output = ToolOutput(
                error=f"tool {call.name!r} was not advertised to the model, so it was not run; "
                f"advertised: {', '.join(tools.trace.tool_names_advertised) or 'none'}",
                error_kind="not_advertised",
            )
        else:
            try:
                output = await tools.call(call.name, call.arguments)
            except anyio.get_cancelled_exc_class():
                # The run's deadline or a cancel cut the call off: say so rather than leave
                # a call that looks as if it returned nothing.
                record.error = "interrupted: the run timed out or was cancelled during this call"
                record.error_kind = "interrupted"
                record.duration_ms = (time.perf_counter() - started) * 1000
                recorder.emit("tool_result", _result_data(record))
                raise
            except Exception as exc:
                record.error = f"{type(exc).__name__}: {exc}"
                record.error_kind = "raised"
                record.duration_ms = (time.perf_counter() - started) * 1000
                recorder.emit("tool_result", _result_data(record))
                raise ToolFailure(
                    f"tool {call.name!r} (call {call.call_id}) crashed: {record.error}",
                    call_id=call.call_id,
                    tool_name=call.name,
                ) from exc
        record.result = _jsonable(output.result)
        record.error = output.error
        if output.error is not None:
            record.error_kind = output.error_kind or "tool_error"
        record.duration_ms = (time.perf_counter() - started) * 1000
        recorder.emit("tool_result", _result_data(record))
        return ToolResultMessage(
            call.call_id,
            call.name,
            record.error if record.error else record.result,
            is_error=record.error is not None,
        )


def _where(run: Run) -> str:
    """Where a run was when its deadline hit, for the timeout message."""
    if run.tool_resolution_trace is None:
        return " while resolving tools"
    last = run.tool_calls[-1] if run.tool_calls else None
    if last is not None and last.result is None and last.error is None:
        return f" while tool {last.name!r} (call {last.call_id}) ran"
    return " while waiting for the model"


def _result_data(call: ToolCall) -> dict[str, Any]:
    """A ``tool_result`` event's data; ``error_kind`` is there only when the call errored."""
    data = {"call_id": call.call_id, "name": call.name, "result": call.result, "error": call.error}
    if call.error_kind is not None:
        data["error_kind"] = call.error_kind
    return data


def _jsonable(value: Any) -> Any:
    """Tool results go into JSON columns; anything exotic is stored as its string form."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value
