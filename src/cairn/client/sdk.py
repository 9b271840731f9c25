"""The Python SDK: ``cairn.Client`` (sync) and ``cairn.AsyncClient`` (async), typed with the
same wire models the API serves.

``Client()`` with no URL (and no ``CAIRN_URL``) works in-process over the local ledger;
with a URL it talks to ``cairn serve``. Errors are the ``cairn.errors`` classes::

    client = cairn.Client("http://127.0.0.1:8765", api_key="key_….…")
    run = client.agents.test("support", event_payload={"title": "broken checkout"})
    page = client.agents.runs.list("support", limit=50, status="failed")
    for event in client.runs.stream(run.run_id): ...

Both clients are built from one definition, as httpx builds its two clients on one base:
each method below says once which operation of the table (``cairn.api.table``) it calls,
with which parameters and body, and how the answer is read. The ``operation`` decorator
then makes it a plain method on ``Client`` and a coroutine method on ``AsyncClient``, so
the two expose the same operations with the same signatures and cannot drift apart.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from pydantic import BaseModel

from cairn import wire
from cairn.client.transport import AsyncTransport, StreamEvent, Transport
from cairn.wire import concierge as wire_concierge
from cairn.wire import diagnosis as wire_diagnosis
from cairn.wire import usage as wire_usage

__all__ = ["AsyncClient", "Client", "StreamEvent"]

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)


class Sync:
    """Marks the resources of ``Client``: calls return their result."""


class Async:
    """Marks the resources of ``AsyncClient``: calls return a coroutine."""


Mode = TypeVar("Mode", Sync, Async)


@dataclass(frozen=True, slots=True)
class Call(Generic[R]):
    """One call of an operation of the table: its parameters (path and query, by name), its
    JSON body and how the answer is read."""

    operation: str
    read: Callable[[Any], R]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True, slots=True)
class Follow(Generic[R]):
    """One stream of the table: which events it keeps (``keep``, by event name) and how
    each is read."""

    operation: str
    read: Callable[[Any], R]
    params: dict[str, Any]
    keep: Callable[[str], bool]
    last_event_id: str | None = None


def one(model: type[M]) -> Callable[[Any], M]:
    """Read an answer as ``model``."""
    return model.model_validate


def many(model: type[M]) -> Callable[[Any], builtins.list[M]]:
    """Read an answer as a list of ``model``."""
    return lambda data: [model.model_validate(item) for item in data]


def maybe(model: type[M]) -> Callable[[Any], M | None]:
    """Read an answer as ``model``, or ``None`` for null."""
    return lambda data: None if data is None else model.model_validate(data)


class Resource(Generic[Mode]):
    """A group of operations, over a synchronous or an asynchronous transport."""

    def __init__(self, transport: Transport | AsyncTransport) -> None:
        self._transport = transport

    def _perform(self, call: Call[Any]) -> Any:
        transport = self._transport
        result = transport.call(call.operation, call.params, call.body)
        if inspect.isawaitable(result):

            async def read() -> Any:
                return call.read(await result)

            return read()
        return call.read(result)

    def _follow(self, follow: Follow[Any]) -> Any:
        events = self._transport.stream(
            follow.operation, follow.params, last_event_id=follow.last_event_id
        )
        if isinstance(events, AsyncIterator):
            return _follow_async(events, follow)
        return (follow.read(e.data) for e in events if follow.keep(e.event))


async def _follow_async(events: AsyncIterator[StreamEvent], follow: Follow[R]) -> AsyncIterator[R]:
    async for event in events:
        if follow.keep(event.event):
            yield follow.read(event.data)


class _Described(Generic[P]):
    """A method that describes a ``Call`` or a ``Follow``, made into the method that performs
    it through the resource's ``_perform`` or ``_follow`` (named by ``by``)."""

    by = "_perform"

    def __init__(self, describe: Callable[Concatenate[Any, P], Any]) -> None:
        self.describe = describe
        functools.update_wrapper(self, describe)  # type: ignore[arg-type]

    def _bind(self, resource: Resource[Any] | None) -> Any:
        if resource is None:
            return self
        describe, perform = self.describe, getattr(resource, self.by)

        @functools.wraps(describe)
        def method(*args: Any, **kwargs: Any) -> Any:
            return perform(describe(resource, *args, **kwargs))

        signature = inspect.signature(describe)  # as a bound method shows it: without self
        parameters = list(signature.parameters.values())[1:]
        method.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return method


class operation(_Described[P], Generic[P, R]):
    """Makes a method that describes a ``Call`` into the method that performs it: on a
    ``Client`` resource it returns the result, on an ``AsyncClient`` one a coroutine."""

    def __init__(self, describe: Callable[Concatenate[Any, P], Call[R]]) -> None:
        super().__init__(describe)

    @overload
    def __get__(self, resource: Resource[Sync], owner: Any) -> Callable[P, R]: ...

    @overload
    def __get__(self, resource: Resource[Async], owner: Any) -> Callable[P, Awaitable[R]]: ...

    @overload
    def __get__(self, resource: None, owner: Any) -> operation[P, R]: ...

    def __get__(self, resource: Resource[Any] | None, owner: Any) -> Any:
        return self._bind(resource)


class streaming(_Described[P], Generic[P, R]):
    """As ``operation``, for a stream: an iterator on ``Client``, an async one on
    ``AsyncClient``."""

    by = "_follow"

    def __init__(self, describe: Callable[Concatenate[Any, P], Follow[R]]) -> None:
        super().__init__(describe)

    @overload
    def __get__(self, resource: Resource[Sync], owner: Any) -> Callable[P, Iterator[R]]: ...

    @overload
    def __get__(self, resource: Resource[Async], owner: Any) -> Callable[P, AsyncIterator[R]]: ...

    @overload
    def __get__(self, resource: None, owner: Any) -> streaming[P, R]: ...

    def __get__(self, resource: Resource[Any] | None, owner: Any) -> Any:
        return self._bind(resource)


def _given(**params: Any) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


# --- the resources, once for both clients -----------------------------------------------


class AgentRuns(Resource[Mode]):
    """An agent's runs."""

    @operation
    def list(
        self,
        slug: str,
        *,
        limit: int = 20,
        status: str | None = None,
        trigger_id: str | None = None,
        kind: str | None = None,
        before: str | None = None,
        since: str | None = None,
    ) -> Call[wire.RunPage]:
        """The agent's runs, newest first (``page.next_before`` continues)."""
        params = _given(
            slug=slug,
            limit=limit,
            status=status,
            trigger_id=trigger_id,
            kind=kind,
            before=before,
            since=since,
        )
        return Call("list_agent_runs", one(wire.RunPage), params)

    @operation
    def get_trace(self, slug: str, run_id: str) -> Call[wire.ToolResolutionTrace | None]:
        """The tool-resolution trace of one of the agent's runs."""
        params = {"slug": slug, "run_id": run_id}
        return Call("get_agent_run_trace", maybe(wire.ToolResolutionTrace), params)

    @streaming
    def follow(self, slug: str) -> Follow[wire.RunSummary]:
        """Runs of the agent as they start and finish; reconnects by itself. Endless."""
        return Follow(
            "stream_agent_runs", one(wire.RunSummary), {"slug": slug}, lambda e: e == "run"
        )


class Agents(Resource[Mode]):
    """Agents: create, change, archive, fire."""

    def __init__(self, transport: Transport | AsyncTransport) -> None:
        super().__init__(transport)
        self.runs: AgentRuns[Mode] = AgentRuns(transport)

    @operation
    def create(
        self,
        slug: str,
        system_prompt: str,
        *,
        name: str | None = None,
        description: str = "",
        tool_sources: builtins.list[str] | None = None,
        tool_allowlist: builtins.list[str] | None = None,
        model_settings: dict[str, Any] | None = None,
    ) -> Call[wire.Agent]:
        """Create an agent; ``warnings`` on the result name stale allowlist entries."""
        body = {
            "slug": slug,
            "system_prompt": system_prompt,
            "name": name,
            "description": description,
            "tool_sources": tool_sources,
            "tool_allowlist": builtins.list(tool_allowlist or []),
            "model_settings": model_settings or {},
        }
        return Call("create_agent", one(wire.Agent), body=body)

    @operation
    def list(self) -> Call[builtins.list[wire.Agent]]:
        """Every agent of the sandbox."""
        return Call("list_agents", many(wire.Agent))

    @operation
    def get(self, slug: str) -> Call[wire.Agent]:
        """One agent."""
        return Call("get_agent", one(wire.Agent), {"slug": slug})

    @operation
    def update(self, /, slug: str, **changes: Any) -> Call[wire.Agent]:
        """Change only the named fields (``tool_sources=None`` resets to the default)."""
        return Call("update_agent", one(wire.Agent), {"slug": slug}, changes)

    @operation
    def archive(self, slug: str) -> Call[wire.Agent]:
        """Archive (reversible)."""
        return Call("archive_agent", one(wire.Agent), {"slug": slug})

    @operation
    def unarchive(self, slug: str) -> Call[wire.Agent]:
        """Restore an archived agent."""
        return Call("unarchive_agent", one(wire.Agent), {"slug": slug})

    @operation
    def tools(self, slug: str) -> Call[wire.Catalog]:
        """The tools the agent would see now, and the trace."""
        return Call("agent_tools", one(wire.Catalog), {"slug": slug})

    @operation
    def test(self, slug: str, event_payload: Any = None) -> Call[wire.Run]:
        """Test-fire synchronously; the finished run."""
        body = {"event_payload": {} if event_payload is None else event_payload}
        return Call("test_agent", one(wire.Run), {"slug": slug}, body)

    @operation
    def fire(self, slug: str, event_payload: Any = None) -> Call[wire.FireAccepted]:
        """Fire asynchronously; the run id at once."""
        body = {"event_payload": {} if event_payload is None else event_payload}
        return Call("fire_agent", one(wire.FireAccepted), {"slug": slug}, body)

    @operation
    def why_not_fired(self, slug: str) -> Call[wire_diagnosis.Explanation]:
        """Why the agent did (not) fire on the last event of any source bound to it."""
        return Call("why_not_fired", one(wire_diagnosis.Explanation), {"slug": slug})


class Runs(Resource[Mode]):
    """Runs: read, follow, cancel, replay, explain."""

    @operation
    def list(
        self,
        *,
        agent: str | None = None,
        limit: int = 20,
        status: str | None = None,
        trigger_id: str | None = None,
        kind: str | None = None,
        before: str | None = None,
        since: str | None = None,
    ) -> Call[wire.RunPage]:
        """Runs across agents, newest first (``page.next_before`` continues)."""
        params = _given(
            agent=agent,
            limit=limit,
            status=status,
            trigger_id=trigger_id,
            kind=kind,
            before=before,
            since=since,
        )
        return Call("list_runs", one(wire.RunPage), params)

    @operation
    def get(self, run_id: str) -> Call[wire.Run]:
        """One run."""
        return Call("get_run", one(wire.Run), {"run_id": run_id})

    @operation
    def get_trace(self, run_id: str) -> Call[wire.ToolResolutionTrace | None]:
        """The run's tool-resolution trace."""
        return Call("get_trace", maybe(wire.ToolResolutionTrace), {"run_id": run_id})

    @operation
    def events(self, run_id: str, *, after: int = 0) -> Call[builtins.list[wire.RunEvent]]:
        """Stored events after sequence ``after``."""
        return Call("get_events", many(wire.RunEvent), {"run_id": run_id, "after": after})

    @operation
    def cancel(self, run_id: str) -> Call[wire.Run]:
        """Cancel a live run."""
        return Call("cancel_run", one(wire.Run), {"run_id": run_id})

    @operation
    def replay(self, run_id: str, event_payload: Any = None) -> Call[wire.Run]:
        """Re-fire the run's event (or an edited one) as a test run."""
        body = {"event_payload": event_payload}
        return Call("replay_run", one(wire.Run), {"run_id": run_id}, body)

    @operation
    def oneshot(self, /, agent: str | None, prompt: str, **settings: Any) -> Call[wire.Run]:
        """One turn of ``agent`` on ``prompt`` (``agent=None``: the ad-hoc agent, configured
        by ``model_settings=``, ``tool_sources=``, ``tool_allowlist=``)."""
        body = {"agent": agent, "prompt": prompt, **settings}
        return Call("oneshot", one(wire.Run), body=body)

    @streaming
    def stream(self, run_id: str, *, after: int = 0) -> Follow[wire.RunEvent]:
        """The run's events in order, live, resuming by itself; ends when the run is final."""
        return Follow(
            "stream_run", one(wire.RunEvent), {"run_id": run_id}, lambda e: e != "end", str(after)
        )

    @operation
    def explain(self, run_id: str) -> Call[wire_diagnosis.Explanation]:
        """Why the run did what it did: the cause, the fix and the fields they rest on."""
        return Call("explain_run", one(wire_diagnosis.Explanation), {"run_id": run_id})


class Sources(Resource[Mode]):
    """Tool and event sources."""

    @operation
    def list(self) -> Call[builtins.list[wire.Source]]:
        """Every source (builtin first)."""
        return Call("list_sources", many(wire.Source))

    @operation
    def get(self, ref: str) -> Call[wire.Source]:
        """One source by id or label."""
        return Call("get_source", one(wire.Source), {"ref": ref})

    @operation
    def add(self, /, label: str, *, transport: str, **config: Any) -> Call[wire.Health]:
        """Register an MCP server (see ``wire.SourceCreate``) and health-check it."""
        body = {"label": label, "transport": transport, **config}
        return Call("add_source", one(wire.Health), body=body)

    @operation
    def add_webhook(
        self,
        label: str,
        *,
        provider: str = "cairn",
        signing_secret: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> Call[wire.WebhookCreated]:
        """A webhook source for ``provider`` (see ``wire.WebhookCreate``)."""
        body = {
            "label": label,
            "provider": provider,
            "signing_secret": signing_secret,
            "options": options,
        }
        return Call("add_webhook", one(wire.WebhookCreated), body=body)

    @operation
    def rotate_secret(
        self, ref: str, *, signing_secret: str | None = None, overlap: str = "24h"
    ) -> Call[wire.SecretRotated]:
        """A new signing secret; the previous one verifies for ``overlap`` more."""
        body = {"signing_secret": signing_secret, "overlap": overlap}
        return Call("rotate_webhook_secret", one(wire.SecretRotated), {"ref": ref}, body)

    @operation
    def test(self, ref: str) -> Call[wire.Health]:
        """Health-check now."""
        return Call("test_source", one(wire.Health), {"ref": ref})

    @operation
    def revoke(self, ref: str) -> Call[wire.Source]:
        """Forget the binding and its secret."""
        return Call("revoke_source", one(wire.Source), {"ref": ref})


class Keys(Resource[Mode]):
    """The sandbox's API keys (owner)."""

    @operation
    def list(self) -> Call[builtins.list[wire.ApiKey]]:
        """The sandbox's keys."""
        return Call("list_keys", many(wire.ApiKey))

    @operation
    def create(self, name: str = "", role: str = "viewer") -> Call[wire.ApiKeyCreated]:
        """A new key; the token is shown this once."""
        body = {"name": name, "role": role}
        return Call("create_key", one(wire.ApiKeyCreated), body=body)

    @operation
    def revoke(self, key_id: str) -> Call[wire.ApiKey]:
        """Revoke a key."""
        return Call("revoke_key", one(wire.ApiKey), {"key_id": key_id})


class Usage(Resource[Mode]):
    """Cost-watch: ``client.usage(since="24h", by="agent")`` is the report; the methods
    manage per-agent thresholds and runaways."""

    @operation
    def __call__(
        self,
        *,
        since: str = "24h",
        by: str = "agent",
        agent: str | None = None,
        trigger_id: str | None = None,
    ) -> Call[wire_usage.UsageReport]:
        """Runs, tokens and estimated cost (micro-units) over the window ``since``, grouped
        ``by`` agent, trigger, model or hour, each row with its tokens per hour."""
        params = _given(since=since, by=by, agent=agent, trigger_id=trigger_id)
        return Call("get_usage", one(wire_usage.UsageReport), params)

    @operation
    def get_threshold(self, slug: str) -> Call[wire_usage.Threshold | None]:
        """The agent's threshold, or ``None`` when it is not watched."""
        return Call("get_threshold", maybe(wire_usage.Threshold), {"slug": slug})

    @operation
    def set_threshold(
        self,
        slug: str,
        *,
        tokens_per_hour: int | None = None,
        cost_micros_per_hour: int | None = None,
        pause_triggers: bool = False,
    ) -> Call[wire_usage.Threshold]:
        """Set (replace) the agent's limits per hour; ``pause_triggers`` lets enforcing a
        breach pause its triggers."""
        body = {
            "tokens_per_hour": tokens_per_hour,
            "cost_micros_per_hour": cost_micros_per_hour,
            "pause_triggers": pause_triggers,
        }
        return Call("put_threshold", one(wire_usage.Threshold), {"slug": slug}, body)

    @operation
    def clear_threshold(self, slug: str) -> Call[wire_usage.ThresholdCleared]:
        """Stop watching the agent."""
        return Call("delete_threshold", one(wire_usage.ThresholdCleared), {"slug": slug})

    @operation
    def thresholds(self) -> Call[builtins.list[wire_usage.Threshold]]:
        """Every threshold of the sandbox."""
        return Call("list_thresholds", many(wire_usage.Threshold))

    @operation
    def runaways(self) -> Call[builtins.list[wire_usage.RunawayFlag]]:
        """Agents over a threshold in the last hour (changes nothing)."""
        return Call("list_runaways", many(wire_usage.RunawayFlag))

    @operation
    def enforce(self) -> Call[builtins.list[wire_usage.RunawayFlag]]:
        """Pause the triggers of runaway agents whose threshold says so, recording why."""
        return Call("enforce", many(wire_usage.RunawayFlag))

    @operation
    def enforcements(
        self, *, agent: str | None = None, limit: int = 50
    ) -> Call[builtins.list[wire_usage.Enforcement]]:
        """Enforcements that paused triggers, newest first, with their reasons."""
        params = _given(agent=agent, limit=limit)
        return Call("list_enforcements", many(wire_usage.Enforcement), params)


class BaseClient(Resource[Mode]):
    """What ``Client`` and ``AsyncClient`` share: every resource and operation."""

    def __init__(self, transport: Transport | AsyncTransport) -> None:
        super().__init__(transport)
        self.agents: Agents[Mode] = Agents(transport)
        self.runs: Runs[Mode] = Runs(transport)
        self.sources: Sources[Mode] = Sources(transport)
        self.keys: Keys[Mode] = Keys(transport)
        self.usage: Usage[Mode] = Usage(transport)

    @operation
    def whoami(self) -> Call[wire.Identity]:
        """The key's sandbox and role (the local operator: owner, ``key_id`` null)."""
        return Call("whoami", one(wire.Identity))

    @operation
    def ask(
        self, question: str, *, offline: bool = False, yes: bool = False
    ) -> Call[wire_concierge.Answer]:
        """Ask the Concierge in plain English; the answer cites run ids and suggests
        commands (``offline=True`` skips a configured Concierge agent; ``yes=True``
        confirms a test fire of an agent whose tools may act)."""
        body = {"question": question, "offline": offline, "yes": yes}
        return Call("ask", one(wire_concierge.Answer), body=body)

    @operation
    def explain_event(self, event_id: str) -> Call[wire_diagnosis.Explanation]:
        """Why an event fired what it fired, or nothing (each trigger's decision)."""
        return Call("explain_event", one(wire_diagnosis.Explanation), {"event_id": event_id})

    @operation
    def doctor(
        self, *, agent: str | None = None, quiet_days: float = 7
    ) -> Call[wire_diagnosis.DoctorReport]:
        """Scan for what needs fixing without running anything (``report.ok``)."""
        params = _given(agent=agent, quiet_days=quiet_days)
        return Call("doctor", one(wire_diagnosis.DoctorReport), params)


# --- the two clients --------------------------------------------------------------------


class Client(BaseClient[Sync]):
    """Synchronous SDK. ``base_url`` (or ``CAIRN_URL``) for a server, else in-process."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        sandbox: str | None = None,
        transport: Transport | None = None,
    ) -> None:
        sandbox = sandbox or os.environ.get("CAIRN_SANDBOX") or "default"
        if transport is None:
            url = base_url or os.environ.get("CAIRN_URL")
            if url:
                from cairn.client.http import HttpTransport

                transport = HttpTransport(url, api_key or os.environ.get("CAIRN_API_KEY"), sandbox)
            else:
                from cairn.client.local import LocalTransport
                from cairn.config import load_settings
                from cairn.services.app import App

                transport = LocalTransport(App(load_settings(sandbox=sandbox)), sandbox)
        super().__init__(transport)
        self.transport = transport

    def close(self) -> None:
        """Release connections."""
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(BaseClient[Async]):
    """Asynchronous SDK over HTTP (``base_url`` or ``CAIRN_URL`` is required)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        sandbox: str | None = None,
        transport: AsyncTransport | None = None,
    ) -> None:
        if transport is None:
            url = base_url or os.environ.get("CAIRN_URL")
            if not url:
                from cairn.errors import UsageError

                raise UsageError(
                    "AsyncClient needs base_url or CAIRN_URL (the in-process mode is sync)"
                )
            from cairn.client.http import AsyncHttpTransport

            transport = AsyncHttpTransport(
                url,
                api_key or os.environ.get("CAIRN_API_KEY"),
                sandbox or os.environ.get("CAIRN_SANDBOX") or "default",
            )
        super().__init__(transport)
        self.transport = transport

    async def aclose(self) -> None:
        """Release connections."""
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
