"""The Python SDK: ``cairn.Client`` (sync) and ``cairn.AsyncClient`` (async), typed with the
same wire models the API serves.

``Client()`` with no URL (and no ``CAIRN_URL``) works in-process over the local ledger;
with a URL it talks to ``cairn serve``. Errors are the ``cairn.errors`` classes::

    client = cairn.Client("http://127.0.0.1:8765", api_key="key_….…")
    run = client.agents.test("support", event_payload={"title": "broken checkout"})
    page = client.agents.runs.list("support", limit=50, status="failed")
    for event in client.runs.stream(run.run_id): ...
"""

from __future__ import annotations

import builtins
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

from cairn import wire
from cairn.client.http import AsyncHttpTransport, HttpTransport
from cairn.client.transport import StreamEvent, Transport
from cairn.wire import concierge as wire_concierge
from cairn.wire import diagnosis as wire_diagnosis
from cairn.wire import usage as wire_usage

__all__ = ["AsyncClient", "Client", "StreamEvent"]


def _agent_body(
    slug: str,
    system_prompt: str,
    name: str | None,
    description: str,
    tool_sources: list[str] | None,
    tool_allowlist: list[str] | None,
    model_settings: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "slug": slug,
        "system_prompt": system_prompt,
        "name": name,
        "description": description,
        "tool_sources": tool_sources,
        "tool_allowlist": list(tool_allowlist or []),
        "model_settings": model_settings or {},
    }


def _run_params(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class _AgentRuns:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

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
    ) -> wire.RunPage:
        """The agent's runs, newest first (``page.next_before`` continues)."""
        params = _run_params(
            limit=limit,
            status=status,
            trigger_id=trigger_id,
            kind=kind,
            before=before,
            since=since,
        )
        return wire.RunPage.model_validate(
            self._t.request("GET", f"/agents/{slug}/runs", params=params)
        )

    def get_trace(self, slug: str, run_id: str) -> wire.ToolResolutionTrace | None:
        """The tool-resolution trace of one of the agent's runs."""
        data = self._t.request("GET", f"/agents/{slug}/runs/{run_id}/trace")
        return wire.ToolResolutionTrace.model_validate(data) if data is not None else None

    def follow(self, slug: str) -> Iterator[wire.RunSummary]:
        """Runs of the agent as they start and finish; reconnects by itself. Endless."""
        for event in self._t.stream(f"/agents/{slug}/runs/stream"):
            if event.event == "run":
                yield wire.RunSummary.model_validate(event.data)


class _Agents:
    def __init__(self, transport: Transport) -> None:
        self._t = transport
        self.runs = _AgentRuns(transport)

    def create(
        self,
        slug: str,
        system_prompt: str,
        *,
        name: str | None = None,
        description: str = "",
        tool_sources: list[str] | None = None,
        tool_allowlist: list[str] | None = None,
        model_settings: dict[str, Any] | None = None,
    ) -> wire.Agent:
        """Create an agent; ``warnings`` on the result name stale allowlist entries."""
        body = _agent_body(
            slug, system_prompt, name, description, tool_sources, tool_allowlist, model_settings
        )
        return wire.Agent.model_validate(self._t.request("POST", "/agents", json=body))

    def list(self) -> builtins.list[wire.Agent]:
        """Every agent of the sandbox."""
        return [wire.Agent.model_validate(a) for a in self._t.request("GET", "/agents")]

    def get(self, slug: str) -> wire.Agent:
        """One agent."""
        return wire.Agent.model_validate(self._t.request("GET", f"/agents/{slug}"))

    def update(self, slug: str, **changes: Any) -> wire.Agent:
        """Change only the named fields (``tool_sources=None`` resets to the default)."""
        return wire.Agent.model_validate(self._t.request("PATCH", f"/agents/{slug}", json=changes))

    def archive(self, slug: str) -> wire.Agent:
        """Archive (reversible)."""
        return wire.Agent.model_validate(self._t.request("POST", f"/agents/{slug}/archive"))

    def unarchive(self, slug: str) -> wire.Agent:
        """Restore an archived agent."""
        return wire.Agent.model_validate(self._t.request("POST", f"/agents/{slug}/unarchive"))

    def tools(self, slug: str) -> wire.Catalog:
        """The tools the agent would see now, and the trace."""
        return wire.Catalog.model_validate(self._t.request("GET", f"/agents/{slug}/tools"))

    def test(self, slug: str, event_payload: Any = None) -> wire.Run:
        """Test-fire synchronously; the finished run."""
        body = {"event_payload": {} if event_payload is None else event_payload}
        return wire.Run.model_validate(self._t.request("POST", f"/agents/{slug}/test", json=body))

    def fire(self, slug: str, event_payload: Any = None) -> wire.FireAccepted:
        """Fire asynchronously; the run id at once."""
        body = {"event_payload": {} if event_payload is None else event_payload}
        data = self._t.request("POST", f"/agents/{slug}/fire", json=body)
        return wire.FireAccepted.model_validate(data)

    def why_not_fired(self, slug: str) -> wire_diagnosis.Explanation:
        """Why the agent did (not) fire on the last event of any source bound to it."""
        data = self._t.request("GET", f"/agents/{slug}/why-not-fired")
        return wire_diagnosis.Explanation.model_validate(data)


class _Runs:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self, *, agent: str | None = None, limit: int = 20, **filters: Any) -> wire.RunPage:
        """Runs across agents, newest first (filters: status, trigger_id, kind, before, since)."""
        params = _run_params(agent=agent, limit=limit, **filters)
        return wire.RunPage.model_validate(self._t.request("GET", "/runs", params=params))

    def get(self, run_id: str) -> wire.Run:
        """One run."""
        return wire.Run.model_validate(self._t.request("GET", f"/runs/{run_id}"))

    def get_trace(self, run_id: str) -> wire.ToolResolutionTrace | None:
        """The run's tool-resolution trace."""
        data = self._t.request("GET", f"/runs/{run_id}/trace")
        return wire.ToolResolutionTrace.model_validate(data) if data is not None else None

    def events(self, run_id: str, *, after: int = 0) -> builtins.list[wire.RunEvent]:
        """Stored events after sequence ``after``."""
        data = self._t.request("GET", f"/runs/{run_id}/events", params={"after": after})
        return [wire.RunEvent.model_validate(e) for e in data]

    def cancel(self, run_id: str) -> wire.Run:
        """Cancel a live run."""
        return wire.Run.model_validate(self._t.request("POST", f"/runs/{run_id}/cancel"))

    def replay(self, run_id: str, event_payload: Any = None) -> wire.Run:
        """Re-fire the run's event (or an edited one) as a test run."""
        data = self._t.request(
            "POST", f"/runs/{run_id}/replay", json={"event_payload": event_payload}
        )
        return wire.Run.model_validate(data)

    def oneshot(self, agent: str | None, prompt: str, **settings: Any) -> wire.Run:
        """One turn of ``agent`` on ``prompt`` (``agent=None``: the ad-hoc agent, configured
        by ``model_settings=``, ``tool_sources=``, ``tool_allowlist=``)."""
        body = {"agent": agent, "prompt": prompt, **settings}
        data = self._t.request("POST", "/runs/oneshot", json=body)
        return wire.Run.model_validate(data)

    def stream(self, run_id: str, *, after: int = 0) -> Iterator[wire.RunEvent]:
        """The run's events in order, live, resuming by itself; ends when the run is final."""
        for event in self._t.stream(f"/runs/{run_id}/stream", last_event_id=str(after)):
            if event.event != "end":
                yield wire.RunEvent.model_validate(event.data)

    def explain(self, run_id: str) -> wire_diagnosis.Explanation:
        """Why the run did what it did: the cause, the fix and the fields they rest on."""
        data = self._t.request("GET", f"/runs/{run_id}/explain")
        return wire_diagnosis.Explanation.model_validate(data)


class _Sources:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self) -> builtins.list[wire.Source]:
        """Every source (builtin first)."""
        return [wire.Source.model_validate(s) for s in self._t.request("GET", "/sources")]

    def get(self, ref: str) -> wire.Source:
        """One source by id or label."""
        return wire.Source.model_validate(self._t.request("GET", f"/sources/{ref}"))

    def add(self, label: str, *, transport: str, **config: Any) -> wire.Health:
        """Register an MCP server (see ``wire.SourceCreate``) and health-check it."""
        body = {"label": label, "transport": transport, **config}
        return wire.Health.model_validate(self._t.request("POST", "/sources", json=body))

    def add_webhook(
        self,
        label: str,
        *,
        provider: str = "cairn",
        signing_secret: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> wire.WebhookCreated:
        """A webhook source for ``provider`` (see ``wire.WebhookCreate``)."""
        body = {
            "label": label,
            "provider": provider,
            "signing_secret": signing_secret,
            "options": options,
        }
        made = self._t.request("POST", "/sources/webhooks", json=body)
        return wire.WebhookCreated.model_validate(made)

    def rotate_secret(
        self, ref: str, *, signing_secret: str | None = None, overlap: str = "24h"
    ) -> wire.SecretRotated:
        """A new signing secret; the previous one verifies for ``overlap`` more."""
        body = {"signing_secret": signing_secret, "overlap": overlap}
        done = self._t.request("POST", f"/sources/{ref}/rotate-secret", json=body)
        return wire.SecretRotated.model_validate(done)

    def test(self, ref: str) -> wire.Health:
        """Health-check now."""
        return wire.Health.model_validate(self._t.request("POST", f"/sources/{ref}/test"))

    def revoke(self, ref: str) -> wire.Source:
        """Forget the binding and its secret."""
        return wire.Source.model_validate(self._t.request("POST", f"/sources/{ref}/revoke"))


class _Keys:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self) -> builtins.list[wire.ApiKey]:
        """The sandbox's keys."""
        return [wire.ApiKey.model_validate(k) for k in self._t.request("GET", "/keys")]

    def create(self, name: str = "", role: str = "viewer") -> wire.ApiKeyCreated:
        """A new key; the token is shown this once."""
        data = self._t.request("POST", "/keys", json={"name": name, "role": role})
        return wire.ApiKeyCreated.model_validate(data)

    def revoke(self, key_id: str) -> wire.ApiKey:
        """Revoke a key."""
        return wire.ApiKey.model_validate(self._t.request("POST", f"/keys/{key_id}/revoke"))


class _Usage:
    """Cost-watch: ``client.usage(since="24h", by="agent")`` is the report; the methods
    manage per-agent thresholds and runaways."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def __call__(
        self,
        *,
        since: str = "24h",
        by: str = "agent",
        agent: str | None = None,
        trigger_id: str | None = None,
    ) -> wire_usage.UsageReport:
        """Runs, tokens and estimated cost (micro-units) over the window ``since``, grouped
        ``by`` agent, trigger, model or hour, each row with its tokens per hour."""
        params = _run_params(since=since, by=by, agent=agent, trigger_id=trigger_id)
        data = self._t.request("GET", "/usage", params=params)
        return wire_usage.UsageReport.model_validate(data)

    def get_threshold(self, slug: str) -> wire_usage.Threshold | None:
        """The agent's threshold, or ``None`` when it is not watched."""
        data = self._t.request("GET", f"/agents/{slug}/threshold")
        return wire_usage.Threshold.model_validate(data) if data is not None else None

    def set_threshold(
        self,
        slug: str,
        *,
        tokens_per_hour: int | None = None,
        cost_micros_per_hour: int | None = None,
        pause_triggers: bool = False,
    ) -> wire_usage.Threshold:
        """Set (replace) the agent's limits per hour; ``pause_triggers`` lets enforcing a
        breach pause its triggers."""
        body = {
            "tokens_per_hour": tokens_per_hour,
            "cost_micros_per_hour": cost_micros_per_hour,
            "pause_triggers": pause_triggers,
        }
        data = self._t.request("PUT", f"/agents/{slug}/threshold", json=body)
        return wire_usage.Threshold.model_validate(data)

    def clear_threshold(self, slug: str) -> wire_usage.ThresholdCleared:
        """Stop watching the agent."""
        data = self._t.request("DELETE", f"/agents/{slug}/threshold")
        return wire_usage.ThresholdCleared.model_validate(data)

    def thresholds(self) -> builtins.list[wire_usage.Threshold]:
        """Every threshold of the sandbox."""
        data = self._t.request("GET", "/thresholds")
        return [wire_usage.Threshold.model_validate(t) for t in data]

    def runaways(self) -> builtins.list[wire_usage.RunawayFlag]:
        """Agents over a threshold in the last hour (changes nothing)."""
        data = self._t.request("GET", "/runaways")
        return [wire_usage.RunawayFlag.model_validate(f) for f in data]

    def enforce(self) -> builtins.list[wire_usage.RunawayFlag]:
        """Pause the triggers of runaway agents whose threshold says so, recording why."""
        data = self._t.request("POST", "/runaways/enforce")
        return [wire_usage.RunawayFlag.model_validate(f) for f in data]

    def enforcements(
        self, *, agent: str | None = None, limit: int = 50
    ) -> builtins.list[wire_usage.Enforcement]:
        """Enforcements that paused triggers, newest first, with their reasons."""
        data = self._t.request("GET", "/enforcements", params=_run_params(agent=agent, limit=limit))
        return [wire_usage.Enforcement.model_validate(e) for e in data]


class Client:
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
                transport = HttpTransport(url, api_key or os.environ.get("CAIRN_API_KEY"), sandbox)
            else:
                from cairn.client.local import LocalTransport
                from cairn.config import load_settings
                from cairn.services.app import App

                transport = LocalTransport(App(load_settings(sandbox=sandbox)), sandbox)
        self.transport = transport
        self.agents = _Agents(transport)
        self.runs = _Runs(transport)
        self.sources = _Sources(transport)
        self.keys = _Keys(transport)
        self.usage = _Usage(transport)

    def close(self) -> None:
        """Release connections."""
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ask(
        self, question: str, *, offline: bool = False, yes: bool = False
    ) -> wire_concierge.Answer:
        """Ask the Concierge in plain English; the answer cites run ids and suggests
        commands (``offline=True`` skips a configured Concierge agent; ``yes=True``
        confirms a test fire of an agent whose tools may act)."""
        body = {"question": question, "offline": offline, "yes": yes}
        data = self.transport.request("POST", "/ask", json=body)
        return wire_concierge.Answer.model_validate(data)

    def explain_event(self, event_id: str) -> wire_diagnosis.Explanation:
        """Why an event fired what it fired, or nothing (each trigger's decision)."""
        data = self.transport.request("GET", f"/events/{event_id}/explain")
        return wire_diagnosis.Explanation.model_validate(data)

    def doctor(
        self, *, agent: str | None = None, quiet_days: float = 7
    ) -> wire_diagnosis.DoctorReport:
        """Scan for what needs fixing without running anything (``report.ok``)."""
        params = _run_params(agent=agent, quiet_days=quiet_days)
        data = self.transport.request("GET", "/doctor", params=params)
        return wire_diagnosis.DoctorReport.model_validate(data)


class _AsyncAgentRuns:
    def __init__(self, transport: AsyncHttpTransport) -> None:
        self._t = transport

    async def list(self, slug: str, *, limit: int = 20, **filters: Any) -> wire.RunPage:
        """The agent's runs, newest first."""
        params = _run_params(limit=limit, **filters)
        data = await self._t.request("GET", f"/agents/{slug}/runs", params=params)
        return wire.RunPage.model_validate(data)

    async def get_trace(self, slug: str, run_id: str) -> wire.ToolResolutionTrace | None:
        """The tool-resolution trace of one of the agent's runs."""
        data = await self._t.request("GET", f"/agents/{slug}/runs/{run_id}/trace")
        return wire.ToolResolutionTrace.model_validate(data) if data is not None else None

    async def follow(self, slug: str) -> AsyncIterator[wire.RunSummary]:
        """Runs of the agent as they start and finish; reconnects by itself. Endless."""
        async for event in self._t.stream(f"/agents/{slug}/runs/stream"):
            if event.event == "run":
                yield wire.RunSummary.model_validate(event.data)


class _AsyncAgents:
    def __init__(self, transport: AsyncHttpTransport) -> None:
        self._t = transport
        self.runs = _AsyncAgentRuns(transport)

    async def create(self, slug: str, system_prompt: str, **fields: Any) -> wire.Agent:
        """Create an agent (fields as ``Client.agents.create``)."""
        body = _agent_body(
            slug,
            system_prompt,
            fields.get("name"),
            fields.get("description", ""),
            fields.get("tool_sources"),
            fields.get("tool_allowlist"),
            fields.get("model_settings"),
        )
        return wire.Agent.model_validate(await self._t.request("POST", "/agents", json=body))

    async def list(self) -> builtins.list[wire.Agent]:
        """Every agent of the sandbox."""
        return [wire.Agent.model_validate(a) for a in await self._t.request("GET", "/agents")]

    async def get(self, slug: str) -> wire.Agent:
        """One agent."""
        return wire.Agent.model_validate(await self._t.request("GET", f"/agents/{slug}"))

    async def update(self, slug: str, **changes: Any) -> wire.Agent:
        """Change only the named fields."""
        data = await self._t.request("PATCH", f"/agents/{slug}", json=changes)
        return wire.Agent.model_validate(data)

    async def archive(self, slug: str) -> wire.Agent:
        """Archive (reversible)."""
        return wire.Agent.model_validate(await self._t.request("POST", f"/agents/{slug}/archive"))

    async def test(self, slug: str, event_payload: Any = None) -> wire.Run:
        """Test-fire synchronously; the finished run."""
        body = {"event_payload": {} if event_payload is None else event_payload}
        data = await self._t.request("POST", f"/agents/{slug}/test", json=body)
        return wire.Run.model_validate(data)

    async def fire(self, slug: str, event_payload: Any = None) -> wire.FireAccepted:
        """Fire asynchronously; the run id at once."""
        body = {"event_payload": {} if event_payload is None else event_payload}
        data = await self._t.request("POST", f"/agents/{slug}/fire", json=body)
        return wire.FireAccepted.model_validate(data)


class _AsyncRuns:
    def __init__(self, transport: AsyncHttpTransport) -> None:
        self._t = transport

    async def get(self, run_id: str) -> wire.Run:
        """One run."""
        return wire.Run.model_validate(await self._t.request("GET", f"/runs/{run_id}"))

    async def cancel(self, run_id: str) -> wire.Run:
        """Cancel a live run."""
        return wire.Run.model_validate(await self._t.request("POST", f"/runs/{run_id}/cancel"))

    async def replay(self, run_id: str, event_payload: Any = None) -> wire.Run:
        """Re-fire the run's event (or an edited one) as a test run."""
        data = await self._t.request(
            "POST", f"/runs/{run_id}/replay", json={"event_payload": event_payload}
        )
        return wire.Run.model_validate(data)

    async def stream(self, run_id: str, *, after: int = 0) -> AsyncIterator[wire.RunEvent]:
        """The run's events in order, live, resuming by itself; ends when the run is final."""
        async for event in self._t.stream(f"/runs/{run_id}/stream", last_event_id=str(after)):
            if event.event != "end":
                yield wire.RunEvent.model_validate(event.data)

    async def explain(self, run_id: str) -> wire_diagnosis.Explanation:
        """Why the run did what it did."""
        data = await self._t.request("GET", f"/runs/{run_id}/explain")
        return wire_diagnosis.Explanation.model_validate(data)


class AsyncClient:
    """Asynchronous SDK over HTTP (``base_url`` or ``CAIRN_URL`` is required)."""

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, *, sandbox: str | None = None
    ) -> None:
        url = base_url or os.environ.get("CAIRN_URL")
        if not url:
            from cairn.errors import UsageError

            raise UsageError(
                "AsyncClient needs base_url or CAIRN_URL (the in-process mode is sync)"
            )
        self.transport = AsyncHttpTransport(
            url,
            api_key or os.environ.get("CAIRN_API_KEY"),
            sandbox or os.environ.get("CAIRN_SANDBOX") or "default",
        )
        self.agents = _AsyncAgents(self.transport)
        self.runs = _AsyncRuns(self.transport)

    async def aclose(self) -> None:
        """Release connections."""
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def ask(
        self, question: str, *, offline: bool = False, yes: bool = False
    ) -> wire_concierge.Answer:
        """Ask the Concierge in plain English (see ``Client.ask``)."""
        body = {"question": question, "offline": offline, "yes": yes}
        data = await self.transport.request("POST", "/ask", json=body)
        return wire_concierge.Answer.model_validate(data)

    async def doctor(
        self, *, agent: str | None = None, quiet_days: float = 7
    ) -> wire_diagnosis.DoctorReport:
        """Scan for what needs fixing without running anything (``report.ok``)."""
        params = _run_params(agent=agent, quiet_days=quiet_days)
        data = await self.transport.request("GET", "/doctor", params=params)
        return wire_diagnosis.DoctorReport.model_validate(data)
