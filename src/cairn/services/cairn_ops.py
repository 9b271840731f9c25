"""The ``cairn`` tool-source kind: Cairn's own operations as tools, for the Concierge agent
(the tools, and the rights they act with, are listed in ``docs/concierge.md``).

A services module, since its tools call the services (imported inside each operation, so
listing the tools costs nothing); it registers its kind with ``cairn.tools.kinds`` from
``cairn.services`` (the tools layer never names it). None of the tools destroys anything,
so a model cannot delete what it misunderstood.

How a source reaches the App
----------------------------
Resolution builds a source from a ``DataSource`` and a ``ToolContext`` alone, and these
tools need the running ``App``. The App is handed over as a *grant*, a ``ContextVar`` that
``cairn.services.concierge.ask`` sets around the Concierge's run, holding the App, the
sandbox and the asker's role:

- it is scoped to exactly the run the Concierge starts. Several Apps in one process (a
  server and a test, SQLite then PostgreSQL) can never be mixed up, and nothing global is
  left behind when the run ends;
- it carries *who asked*, so a viewer cannot pause a trigger by asking the agent;
- ``ask`` executes the Concierge's run in its own task (not on the server's worker pool),
  so the grant reaches the run's tool calls, and a Concierge that test-fires another agent
  never waits on a worker it is itself holding.

A run started any other way has no asker, and each call is refused. A process-wide
registry of Apps keyed by sandbox was the alternative; it would serve such runs, but with
no asker to hold rights against and with a global that outlives the App.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cairn.domain.keys import Role, role_allows
from cairn.domain.runs import RUN_STATUSES
from cairn.domain.sources import CAIRN_SOURCE, uses_cairn_tools
from cairn.domain.tools import ToolSpec
from cairn.domain.usage import USAGE_BY
from cairn.errors import CairnError
from cairn.text import iso
from cairn.tools.base import ToolOutput
from cairn.tools.functions import FunctionSource, ToolCallError

if TYPE_CHECKING:
    from cairn.domain.runs import Run
    from cairn.services.app import App

EXCERPT_CHARS = 240


@dataclass(frozen=True, slots=True)
class Grant:
    """What one Concierge run may act with: the App, its sandbox, and the asker's role."""

    app: App
    sandbox_id: str
    role: Role


_grant: ContextVar[Grant | None] = ContextVar("cairn_ops_grant", default=None)


@contextmanager
def granted(grant: Grant | None) -> Iterator[None]:
    """Give the ``cairn`` tools of runs executed inside the block this grant (``None``
    withdraws it, e.g. around a nested test fire)."""
    token = _grant.set(grant)
    try:
        yield
    finally:
        _grant.reset(token)


def _schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


_AGENT = {"type": "string", "description": "an agent slug, e.g. support"}
_SINCE = {"type": "string", "description": "a window such as 90m, 24h or 7d"}

SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "list_agents",
        "Every agent of the sandbox: slug, name, status, tool sources and model.",
        _schema({}),
    ),
    ToolSpec(
        "list_runs",
        "Recent runs, newest first, each with run_id, status, outcome, tool calls, tokens, "
        "error and an excerpt of the output. Optionally for one agent, by status, in a window.",
        _schema(
            {
                "agent": _AGENT,
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                "status": {"type": "string", "enum": list(RUN_STATUSES)},
                "since": _SINCE,
            }
        ),
    ),
    ToolSpec(
        "explain_run",
        "Why a run did what it did: a plain-English diagnosis from its row, events and "
        "tool-resolution trace, with the cause, the fix and the fields it rests on.",
        _schema({"run_id": {"type": "string"}}, ["run_id"]),
    ),
    ToolSpec(
        "explain_event",
        "What every trigger decided about one received event (evt_…), and why.",
        _schema({"event_id": {"type": "string"}}, ["event_id"]),
    ),
    ToolSpec(
        "why_not_fired",
        "Why an agent did not fire on its most recent event: the recorded trigger decisions "
        "(filtered out by which filter, rate-limited, paused, archived) or no trigger at all.",
        _schema({"agent": _AGENT}, ["agent"]),
    ),
    ToolSpec(
        "test_fire",
        "Test-fire an agent synchronously with a fake event payload, delivered exactly as a "
        "trigger would; returns the run's id, status, outcome, tool calls and output.",
        _schema({"agent": _AGENT, "event_payload": {}}, ["agent"]),
    ),
    ToolSpec(
        "agent_tools",
        "The tools an agent would see right now (names copied from the live catalog), the "
        "sources that resolved or were skipped (and why), and stale allowlist entries.",
        _schema({"agent": _AGENT}, ["agent"]),
    ),
    ToolSpec(
        "usage",
        "Tokens in and out, runs and estimated cost over a window, grouped by agent, "
        "trigger, model or hour, largest first.",
        _schema(
            {
                "since": _SINCE,
                "by": {"type": "string", "enum": list(USAGE_BY)},
                "agent": _AGENT,
            }
        ),
    ),
    ToolSpec(
        "pause_trigger",
        "Pause a trigger (trg_…): it stops firing and its events are recorded as 'paused'. "
        "Reversible with 'cairn agent trigger resume'. Needs an editor's question.",
        _schema({"trigger_id": {"type": "string"}}, ["trigger_id"]),
    ),
)

NO_GRANT = (
    "Cairn's own operations answer only the Concierge's runs: ask with "
    '`cairn ask "<question>"` or POST /api/v1/sandboxes/<sandbox>/ask'
)


class ToolRefused(ToolCallError):
    """A call this source will not make (bad arguments, missing rights); its message goes
    back to the model as the call's error."""

    kind = "refused"


class CairnOpsSource(FunctionSource):
    """Cairn's operations over the grant's App, scoped to the record's sandbox."""

    kind = CAIRN_SOURCE
    specs = SPECS

    @property
    def grant(self) -> Grant:
        """The grant of the run calling (they are listed even without one, so catalogs tell
        the truth, but a call without one is refused)."""
        grant = _grant.get()
        if grant is None:
            raise ToolRefused(NO_GRANT)
        if grant.sandbox_id != self.sandbox_id:
            raise ToolRefused(f"this run may act in sandbox {grant.sandbox_id!r} only")
        return grant

    def check(self, name: str, arguments: dict[str, Any]) -> None:
        """Refuse every call made without this sandbox's grant."""
        _ = self.grant

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        """Run one operation in this source's sandbox; every failure is the call's error."""
        try:
            return await super().call_tool(name, arguments)
        except CairnError as exc:
            return ToolOutput(error=str(exc), error_kind="refused")

    async def _list_agents(self, arguments: dict[str, Any]) -> Any:
        from cairn.services.agents import list_agents

        grant = self.grant
        return {
            "agents": [
                {
                    "slug": agent.slug,
                    "name": agent.name,
                    "status": agent.status,
                    "tool_sources": agent.tool_sources,
                    "tool_allowlist": agent.tool_allowlist,
                    "model": f"{agent.model_settings.backend}:{agent.model_settings.model}",
                }
                for agent in list_agents(grant.app, self.sandbox_id)
            ]
        }

    async def _list_runs(self, arguments: dict[str, Any]) -> Any:
        from cairn.durations import parse_duration
        from cairn.services.runs import RunQuery, list_runs

        grant = self.grant
        limit = _integer(arguments, "limit", 20, 1, 100)
        status = _optional_text(arguments, "status")
        if status is not None and status not in RUN_STATUSES:
            raise ToolRefused(f"status {status!r} is not one of {', '.join(RUN_STATUSES)}")
        since = _optional_text(arguments, "since")
        query = RunQuery(
            agent_slug=_optional_text(arguments, "agent"),
            status=status,
            since_s=parse_duration(since) if since else None,
            limit=limit,
        )
        found = list_runs(grant.app, self.sandbox_id, query)
        return {"runs": [run_brief(run) for run in found], "count": len(found)}

    async def _explain_run(self, arguments: dict[str, Any]) -> Any:
        return self._explain("explain_run", _text(arguments, "run_id"))

    async def _explain_event(self, arguments: dict[str, Any]) -> Any:
        return self._explain("explain_event", _text(arguments, "event_id"))

    async def _why_not_fired(self, arguments: dict[str, Any]) -> Any:
        return self._explain("why_not_fired", _text(arguments, "agent"))

    def _explain(self, name: str, subject: str) -> Any:
        """Diagnosis ``name`` (``explain_run``, ``explain_event``, ``why_not_fired``) of
        ``subject`` in this sandbox, as JSON."""
        from cairn.services import diagnosis

        explain = getattr(diagnosis, name)
        return explain(self.grant.app, self.sandbox_id, subject).to_dict()

    async def _test_fire(self, arguments: dict[str, Any]) -> Any:
        from cairn.services.agents import get_agent
        from cairn.services.runs import fire_agent

        grant = self.grant
        slug = _text(arguments, "agent")
        if uses_cairn_tools(get_agent(grant.app, self.sandbox_id, slug).tool_sources):
            raise ToolRefused(
                f"agent {slug!r} has Cairn's own tools; the Concierge does not test-fire a "
                "Concierge (it could fire itself forever)"
            )
        payload = arguments.get("event_payload")
        with granted(None):  # the fired agent acts with its own tools only
            run = await fire_agent(
                grant.app, self.sandbox_id, slug, {} if payload is None else payload, kind="test"
            )
        return run_brief(run) | {"output_text": run.output_text}

    async def _agent_tools(self, arguments: dict[str, Any]) -> Any:
        from cairn.services.agents import agent_catalog, describe_missing

        grant = self.grant
        catalog = await agent_catalog(grant.app, self.sandbox_id, _text(arguments, "agent"))
        trace = catalog.trace
        return {
            "agent": catalog.agent.slug,
            "tools": [tool["name"] for tool in catalog.tools],
            "sources_resolved": [
                {"label": s.label, "kind": s.kind, "tool_count": s.tool_count}
                for s in trace.sources_resolved
            ],
            "sources_skipped": [
                {"label": s.label, "kind": s.kind, "reason": s.reason, "message": s.message}
                for s in trace.sources_skipped
            ],
            "allowlist_filtered_out": trace.allowlist_filtered_out,
            "allowlist_missing_entries": [
                describe_missing(entry) for entry in trace.allowlist_missing_entries
            ],
        }

    async def _usage(self, arguments: dict[str, Any]) -> Any:
        from cairn.durations import parse_duration
        from cairn.services.usage import usage

        grant = self.grant
        since = _optional_text(arguments, "since") or "24h"
        by = _optional_text(arguments, "by") or "agent"
        if by not in USAGE_BY:
            raise ToolRefused(f"by {by!r} is not one of {', '.join(USAGE_BY)}")
        report = usage(
            grant.app,
            self.sandbox_id,
            since_s=parse_duration(since),
            by=by,
            agent=_optional_text(arguments, "agent"),
        )
        return report.to_dict()

    async def _pause_trigger(self, arguments: dict[str, Any]) -> Any:
        from cairn.services.triggers import get_trigger, update_trigger

        grant = self.grant
        trigger_id = _text(arguments, "trigger_id")
        if not role_allows(grant.role, "editor"):
            raise ToolRefused(
                f"pausing a trigger needs an editor's question (this one came with a "
                f"{grant.role} key); an editor can run: cairn agent trigger pause {trigger_id}"
            )
        before = get_trigger(grant.app, self.sandbox_id, trigger_id)
        trigger = update_trigger(grant.app, self.sandbox_id, trigger_id, status="paused")
        return trigger.to_dict() | {
            "was": before.status,
            "resume_command": f"cairn agent trigger resume {trigger_id}",
        }


def run_brief(run: Run) -> dict[str, Any]:
    """A run as the Concierge cites it: enough to answer "did it work?" at a glance."""
    output = " ".join(run.output_text.split())
    return {
        "run_id": run.run_id,
        "agent": run.agent_slug,
        "kind": run.kind,
        "trigger_id": run.trigger_id,
        "status": run.status,
        "outcome": run.outcome,
        "tool_calls": [call.name for call in run.tool_calls],
        "tool_errors": sum(1 for call in run.tool_calls if call.error),
        "tokens_in": run.usage.tokens_in,
        "tokens_out": run.usage.tokens_out,
        "duration_ms": round(run.duration_ms, 1) if run.duration_ms is not None else None,
        "error_message": run.error_message,
        "output_excerpt": output[:EXCERPT_CHARS] + ("…" if len(output) > EXCERPT_CHARS else ""),
        "created_at": iso(run.created_at),
    }


def _text(arguments: dict[str, Any], key: str) -> str:
    value = arguments.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ToolRefused(f"argument {key!r} is required and must be a non-empty string")
    return value.strip()


def _optional_text(arguments: dict[str, Any], key: str) -> str | None:
    value = arguments.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ToolRefused(f"argument {key!r} must be a string")
    return value.strip()


def _integer(arguments: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = arguments.get(key, default)
    if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ToolRefused(f"argument {key!r} must be a whole number from {low} to {high}")
    return value
