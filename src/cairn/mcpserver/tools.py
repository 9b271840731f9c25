"""The MCP tools: which operations of the table are offered, under which names and roles.

A tool is one operation (``show_run`` may add the run's events, a second one); ``list_runs``
answers with each run's summary (what ``cairn agent runs --follow`` shows of a run), so a
client gets a compact list and asks ``show_run`` for the whole row. Its input
schema is made from the operation's declaration: the fields of its path, then its query
model's or its body model's fields, flattened to the plain JSON Schema MCP clients show
(no ``anyOf`` with null, no titles). Arguments are checked here as the HTTP route checks
them (the query model; the body model in ``cairn.api.table``), so bad input is a one-line
``UsageError`` before anything runs.

Nothing destructive is offered: no archive, destroy, revoke or key management. A tool may
ask more than its operation's role: test-fire and replay spend model tokens on the
caller's behalf, so over MCP they need an editor key (the API lets a viewer test-fire).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from cairn.api import table
from cairn.api.table import Operation
from cairn.domain.keys import ROLES, Role, require
from cairn.errors import UsageError
from cairn.mcpserver.backend import Backend

FIELD_DOCS: dict[str, str] = {
    "slug": "The agent's slug (list_agents names them).",
    "run_id": "A run id, run_… (list_runs names them).",
    "trigger_id": "A trigger id, trg_… (list_triggers names them).",
    "event_payload": "The event, as a trigger would deliver it: any JSON value.",
}
"""How the path fields, and body fields their model leaves undescribed, are described."""


@dataclass(frozen=True, slots=True)
class McpTool:
    """One tool: ``operation`` of the table under ``name``. ``role`` raises the role the
    operation needs (never lowers it); ``body`` is a fixed request body (pause/resume);
    ``events`` adds a ``with_events`` flag that appends the run's events; ``shape`` turns
    the operation's answer into the tool's."""

    name: str
    operation: str
    title: str
    description: str = ""
    role: Role = "viewer"
    action: str = ""
    body: Mapping[str, Any] | None = None
    events: bool = False
    shape: Callable[[Any], Any] | None = None

    @property
    def op(self) -> Operation:
        """The operation of the table this tool runs."""
        return table.operation(self.operation)

    @property
    def needed(self) -> Role:
        """The role a caller needs: the operation's, or the tool's if higher."""
        return max(self.op.role, self.role, key=ROLES.index)

    @property
    def read_only(self) -> bool:
        """Whether calling it changes nothing (a GET)."""
        return self.op.method == "GET"

    @property
    def doc(self) -> str:
        """The description a client shows: the tool's, else the operation's, and the role."""
        text = self.description or self.op.doc.replace("``", "`")
        if self.needed != "viewer":
            text += f" Needs the {self.needed} role."
        return text

    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the arguments (made once per tool)."""
        return _schema(self.name)

    def _make_schema(self) -> dict[str, Any]:
        properties: dict[str, Any] = {
            name: {"type": "string", "description": FIELD_DOCS.get(name, name)}
            for name in self.op.path_params
        }
        model = self._argument_model()
        if model is not None:
            for name, field in model.model_json_schema().get("properties", {}).items():
                properties[name] = _plain(field)
                if "description" not in properties[name] and name in FIELD_DOCS:
                    properties[name]["description"] = FIELD_DOCS[name]
        if self.events:
            properties["with_events"] = {
                "type": "boolean",
                "default": False,
                "description": "Also list the run's events (model turns, tool calls), in order.",
            }
        return {
            "type": "object",
            "properties": properties,
            "required": list(self.op.path_params),
            "additionalProperties": False,
        }

    def _argument_model(self) -> Any:
        """The wire model whose fields are arguments: the query's, else the body's."""
        if self.op.query is not None:
            return table.resolve(self.op.query)
        if self.op.body is not None and self.body is None:
            return table.resolve(self.op.body)
        return None

    def split(self, arguments: Mapping[str, Any] | None) -> tuple[dict[str, Any], Any]:
        """The operation's parameters (path and query) and body from the tool's arguments;
        ``UsageError`` names an unknown argument or a value its model refuses."""
        given = dict(arguments or {})
        model = self._argument_model()
        known = {*self.op.path_params, *(model.model_fields if model is not None else ())}
        if self.events:
            known.add("with_events")
            if not isinstance(given.pop("with_events", False), bool):
                raise UsageError(f"{self.name}: with_events must be true or false")
        unknown = sorted(set(given) - known)
        if unknown:
            takes = ", ".join(sorted(known)) or "no arguments"
            raise UsageError(f"{self.name} takes no argument {unknown[0]!r} (it takes: {takes})")
        params = {name: given.pop(name, None) for name in self.op.path_params}
        for name, value in params.items():
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"{self.name} needs {name}: {FIELD_DOCS.get(name, 'a string')}")
        if self.op.query is not None:
            params |= _checked(self.name, table.resolve(self.op.query), given)
            return params, None
        if self.body is not None:
            return params, dict(self.body)
        return params, (given if self.op.body is not None else None)

    async def run(self, backend: Backend, arguments: Mapping[str, Any] | None) -> Any:
        """Check the caller's role, then run the operation through ``backend``."""
        require(backend.principal, self.needed, self.action or self.op.action or self.name)
        params, body = self.split(arguments)
        result = await backend.call(self.operation, params, body)
        if self.shape is not None:
            result = self.shape(result)
        if self.events and (arguments or {}).get("with_events"):
            events = await backend.call("get_events", {"run_id": params["run_id"]})
            result = {"run": result, "events": events}
        return result


def _summaries(page: dict[str, Any]) -> dict[str, Any]:
    """A page of runs with each run as its summary (``cairn.runner.bus.run_summary``)."""
    from cairn.domain.runs import run_from_dict
    from cairn.runner.bus import run_summary

    return page | {"runs": [run_summary(run_from_dict(row)) for row in page["runs"]]}


@cache
def _schema(name: str) -> dict[str, Any]:
    return BY_NAME[name]._make_schema()


def _checked(tool: str, model: Any, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` validated by the query model: only the arguments given, as it reads them."""
    from pydantic import ValidationError

    try:
        checked = model.model_validate(given)
    except ValidationError as exc:
        raise UsageError(f"{tool}: {table.first_error(exc)}") from None
    values: dict[str, Any] = checked.model_dump(include=set(given))
    return values


def _plain(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic field schema as plain JSON Schema: ``X | None`` as ``X``, no titles."""
    field = {key: value for key, value in schema.items() if key != "title"}
    options = field.pop("anyOf", None)
    if options:
        concrete = [option for option in options if option.get("type") != "null"]
        if len(concrete) == 1:
            field = {**concrete[0], **field}
        else:
            field["anyOf"] = concrete
    if field.get("default", 0) is None:
        del field["default"]
    return field


TOOLS: tuple[McpTool, ...] = (
    McpTool("list_agents", "list_agents", "List agents"),
    McpTool("agent_tools", "agent_tools", "An agent's tool catalog"),
    McpTool("list_runs", "list_runs", "List runs",
            "Runs across the sandbox's agents, newest first, filtered by agent, status, "
            "trigger, kind or window (`since`: 24h, 7d), each as a summary (show_run has the "
            "whole row); `next_before` continues the listing.", shape=_summaries),
    McpTool("show_run", "get_run", "Show a run",
            "One run: status, outcome, output, tool calls, tokens and its tool-resolution "
            "trace (which tools it saw, which sources were skipped and why).", events=True),
    McpTool("explain_run", "explain_run", "Explain a run"),
    McpTool("why_not_fired", "why_not_fired", "Why an agent did not fire"),
    McpTool("list_events", "list_events", "List events"),
    McpTool("list_triggers", "list_triggers", "List triggers",
            "Every trigger of the sandbox: its agent, source, filter, status and fire counts."),
    McpTool("doctor", "doctor", "Doctor"),
    McpTool("usage", "get_usage", "Usage"),
    McpTool("test_fire", "test_agent", "Test-fire an agent",
            "Fire the agent now with a fake event (`event_payload`) as a test run and answer "
            "with the finished run.", role="editor", action="test-fire agents"),
    McpTool("replay_run", "replay_run", "Replay a run",
            "Fire the run's agent again on the run's event (or an edited `event_payload`) as "
            "a test run pointing back at it; answers with the finished run.",
            role="editor", action="replay runs"),
    McpTool("pause_trigger", "update_trigger", "Pause a trigger",
            "Pause a trigger: its events are recorded but fire nothing until it is resumed.",
            action="pause triggers", body={"status": "paused"}),
    McpTool("resume_trigger", "update_trigger", "Resume a trigger",
            "Resume a paused trigger: its next matching event fires the agent again.",
            action="resume triggers", body={"status": "active"}),
)  # fmt: skip

BY_NAME: dict[str, McpTool] = {tool.name: tool for tool in TOOLS}


def tool(name: str) -> McpTool:
    """The tool called ``name``, or ``UsageError`` naming the tools there are."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise UsageError(f"no tool {name!r}: the tools are {', '.join(BY_NAME)}") from None
