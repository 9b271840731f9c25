"""The SDK in-process: the server's operations called directly over the local ledger.

The caller is the local user, owner of the chosen sandbox (whoever can open the database
file can read it anyway). Request bodies are validated by the same wire models as the
server's; streams poll the ledger, since no server's live bus is there to push.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from cairn.api import connection_ops as conn_ops
from cairn.api import operations as ops
from cairn.client.transport import StreamEvent
from cairn.domain.keys import Principal
from cairn.errors import InvalidJSON, NotFound
from cairn.services.app import App

POLL_S = 0.1
Handler = Callable[..., Any]


def _body(model_name: str | type[Any], json: Any) -> Any:
    """Validate a request body with the wire model (named in ``cairn.wire``, or given), as
    the server would."""
    from pydantic import ValidationError

    from cairn import wire
    from cairn.domain.limits import check_value

    check_value(json, "the request body")  # the server's intake limits, in-process too
    model = getattr(wire, model_name) if isinstance(model_name, str) else model_name
    try:
        return model.model_validate(json if json is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidJSON(f"{where}: {first['msg']}" if where else first["msg"]) from None


def _wire_connections() -> Any:
    """The connection wire models, imported on first use as ``cairn.wire`` is (pydantic)."""
    from cairn.wire import connections as wire_connections

    return wire_connections


def _routes() -> list[tuple[str, re.Pattern[str], Handler]]:
    slug = r"(?P<slug>[^/]+)"
    run = r"(?P<run_id>[^/]+)"
    ref = r"(?P<ref>[^/]+)"
    trg = r"(?P<trigger_id>[^/]+)"
    table: list[tuple[str, str, Handler]] = [
        ("GET", "/agents", lambda c, p, j, m: ops.list_agents(c)),
        ("POST", "/agents", lambda c, p, j, m: ops.create_agent(c, _body("AgentCreate", j))),
        ("GET", f"/agents/{slug}", lambda c, p, j, m: ops.get_agent(c, m["slug"])),
        (
            "PATCH",
            f"/agents/{slug}",
            lambda c, p, j, m: ops.update_agent(c, m["slug"], _body("AgentUpdate", j)),
        ),
        (
            "POST",
            f"/agents/{slug}/archive",
            lambda c, p, j, m: ops.set_archived(c, m["slug"], True),
        ),
        (
            "POST",
            f"/agents/{slug}/unarchive",
            lambda c, p, j, m: ops.set_archived(c, m["slug"], False),
        ),
        ("GET", f"/agents/{slug}/tools", lambda c, p, j, m: ops.agent_tools(c, m["slug"])),
        (
            "POST",
            f"/agents/{slug}/test",
            lambda c, p, j, m: ops.test_agent(c, m["slug"], _body("FireRequest", j).event_payload),
        ),
        (
            "POST",
            f"/agents/{slug}/fire",
            lambda c, p, j, m: ops.fire_agent(c, m["slug"], _body("FireRequest", j).event_payload),
        ),
        ("GET", f"/agents/{slug}/runs", lambda c, p, j, m: ops.list_runs(c, agent=m["slug"], **p)),
        (
            "GET",
            f"/agents/{slug}/runs/{run}/trace",
            lambda c, p, j, m: ops.get_trace(c, m["run_id"], agent=m["slug"]),
        ),
        ("GET", "/runs", lambda c, p, j, m: ops.list_runs(c, **p)),
        (
            "POST",
            "/runs/oneshot",
            lambda c, p, j, m: ops.oneshot(c, _body("OneShotRequest", j)),
        ),
        ("GET", f"/runs/{run}", lambda c, p, j, m: ops.get_run(c, m["run_id"])),
        ("GET", f"/runs/{run}/trace", lambda c, p, j, m: ops.get_trace(c, m["run_id"])),
        (
            "GET",
            f"/runs/{run}/events",
            lambda c, p, j, m: ops.get_events(c, m["run_id"], int(p.get("after") or 0)),
        ),
        ("POST", f"/runs/{run}/cancel", lambda c, p, j, m: ops.cancel_run(c, m["run_id"])),
        (
            "POST",
            f"/runs/{run}/replay",
            lambda c, p, j, m: ops.replay_run(
                c, m["run_id"], _body("ReplayRequest", j).event_payload
            ),
        ),
        ("GET", "/sources", lambda c, p, j, m: ops.list_sources(c)),
        ("POST", "/sources", lambda c, p, j, m: ops.add_source(c, _body("SourceCreate", j))),
        ("GET", f"/sources/{ref}", lambda c, p, j, m: ops.get_source(c, m["ref"])),
        ("POST", f"/sources/{ref}/test", lambda c, p, j, m: ops.test_source(c, m["ref"])),
        ("POST", f"/sources/{ref}/revoke", lambda c, p, j, m: ops.revoke_source(c, m["ref"])),
        ("GET", "/keys", lambda c, p, j, m: ops.list_keys(c)),
        (
            "POST",
            "/keys",
            lambda c, p, j, m: ops.create_key(
                c, _body("ApiKeyCreate", j).name, _body("ApiKeyCreate", j).role, p.get("sandbox")
            ),
        ),
        (
            "POST",
            r"/keys/(?P<key_id>[^/]+)/revoke",
            lambda c, p, j, m: ops.revoke_key(c, m["key_id"]),
        ),
        (
            "POST",
            f"/agents/{slug}/triggers",
            lambda c, p, j, m: ops.create_trigger(c, m["slug"], _body("TriggerCreate", j)),
        ),
        ("GET", f"/agents/{slug}/triggers", lambda c, p, j, m: ops.list_triggers(c, m["slug"])),
        ("GET", "/triggers", lambda c, p, j, m: ops.list_triggers(c)),
        ("GET", f"/triggers/{trg}", lambda c, p, j, m: ops.get_trigger(c, m["trigger_id"])),
        (
            "PATCH",
            f"/triggers/{trg}",
            lambda c, p, j, m: ops.update_trigger(c, m["trigger_id"], _body("TriggerUpdate", j)),
        ),
        ("DELETE", f"/triggers/{trg}", lambda c, p, j, m: ops.destroy_trigger(c, m["trigger_id"])),
        ("GET", "/events", lambda c, p, j, m: ops.list_events(c, **p)),
        ("GET", r"/events/(?P<event_id>[^/]+)", lambda c, p, j, m: ops.get_event(c, m["event_id"])),
        (
            "POST",
            "/sources/webhooks",
            lambda c, p, j, m: ops.add_webhook(c, _body("WebhookCreate", j)),
        ),
        (
            "POST",
            f"/sources/{ref}/rotate-secret",
            lambda c, p, j, m: ops.rotate_webhook_secret(c, m["ref"], _body("SecretRotate", j)),
        ),
        ("GET", "/connections", lambda c, p, j, m: conn_ops.list_connections(c)),
        (
            "POST",
            "/connections",
            lambda c, p, j, m: conn_ops.add_connection(
                c, _body(_wire_connections().ConnectionCreate, j)
            ),
        ),
        (
            "POST",
            f"/connections/{ref}/revoke",
            lambda c, p, j, m: conn_ops.revoke_connection(c, m["ref"]),
        ),
        (
            "POST",
            "/sources/integrations",
            lambda c, p, j, m: conn_ops.add_integration_source(
                c, _body(_wire_connections().IntegrationSourceCreate, j)
            ),
        ),
        (
            "POST",
            "/sources/schedules",
            lambda c, p, j, m: ops.add_schedule(
                c,
                _body("ScheduleCreate", j).label,
                _body("ScheduleCreate", j).cron,
                _body("ScheduleCreate", j).timezone,
            ),
        ),
        ("GET", "/credentials", lambda c, p, j, m: ops.list_credentials(c)),
        (
            "PUT",
            r"/credentials/(?P<backend>[^/]+)",
            lambda c, p, j, m: ops.set_credential(
                c, m["backend"], _body("CredentialSet", j).api_key
            ),
        ),
        (
            "DELETE",
            r"/credentials/(?P<backend>[^/]+)",
            lambda c, p, j, m: ops.delete_credential(c, m["backend"]),
        ),
        ("GET", "//sandboxes", lambda c, p, j, m: ops.list_sandboxes(c)),
        (
            "POST",
            "//sandboxes",
            lambda c, p, j, m: ops.create_sandbox(
                c, _body("SandboxCreate", j).sandbox_id, _body("SandboxCreate", j).name
            ),
        ),
    ]
    for module_name in EXTRA_ROUTE_MODULES:
        table.extend(_extra_routes(module_name))
    return [(method, re.compile(f"^{pattern}$"), handler) for method, pattern, handler in table]


EXTRA_ROUTE_MODULES = (
    "cairn.api.diagnosis_ops",
    "cairn.api.usage_ops",
    "cairn.api.concierge_ops",
    "cairn.api.status_ops",
    "cairn.api.telemetry_ops",
)
"""Operation modules that add their own in-process routes: each may define ``LOCAL_ROUTES``,
a list of ``(method, path regex, handler(caller, params, json, match))`` like the table
above, so a feature adds its paths next to its operations."""


def _extra_routes(module_name: str) -> list[tuple[str, str, Handler]]:
    import importlib

    return list(getattr(importlib.import_module(module_name), "LOCAL_ROUTES", []))


class LocalTransport:
    """Synchronous in-process transport over ``app``."""

    def __init__(self, app: App, sandbox: str = "default") -> None:
        self.app = app
        self.sandbox = sandbox
        self._routes = _routes()

    @property
    def caller(self) -> ops.Caller:
        """The local user: owner of the sandbox."""
        return ops.Caller(self.app, Principal(self.sandbox, "owner"))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Dispatch to the operation the server would run for ``method path``."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        for route_method, pattern, handler in self._routes:
            match = pattern.match(path)
            if match and route_method == method:
                result = handler(self.caller, clean, json, match.groupdict())
                if isinstance(result, Awaitable):
                    return _run(result)
                return result
        raise NotFound(f"no operation {method} {path}")

    def stream(self, path: str, *, last_event_id: str | None = None) -> Iterator[StreamEvent]:
        """Run streams by polling the ledger (the CLI without a server)."""
        run_match = re.match(r"^/runs/(?P<run_id>[^/]+)/stream$", path)
        if run_match:
            return self._run_stream(run_match["run_id"], int(last_event_id or 0))
        agent_match = re.match(r"^/agents/(?P<slug>[^/]+)/runs/stream$", path)
        if agent_match:
            return self._agent_stream(agent_match["slug"], last_event_id)
        raise NotFound(f"no stream {path}")

    def _run_stream(self, run_id: str, last: int) -> Iterator[StreamEvent]:
        from cairn.domain.runs import FINAL_STATUSES

        while True:
            for event in ops.get_events(self.caller, run_id, last):
                last = event["seq"]
                yield StreamEvent(str(event["seq"]), event["kind"], event)
            run = ops.get_run(self.caller, run_id)
            if run["status"] in FINAL_STATUSES:
                for event in ops.get_events(self.caller, run_id, last):
                    last = event["seq"]
                    yield StreamEvent(str(event["seq"]), event["kind"], event)
                yield StreamEvent(
                    None,
                    "end",
                    {"run_id": run_id, "status": run["status"], "outcome": run["outcome"]},
                )
                return
            time.sleep(POLL_S)

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


def _run(awaitable: Awaitable[Any]) -> Any:
    import anyio

    async def wait() -> Any:
        return await awaitable

    return anyio.run(wait)
