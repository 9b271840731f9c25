"""Every tool of the MCP server with arguments for the module's scene, and what its answer
must show: the HTTP and the stdio tests call them all (as an editor or the operator)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cairn import wire
from tests.mcp_server.conftest import Scene

Check = Callable[[Scene, Any], None]


def _agents(scene: Scene, found: Any) -> None:
    assert scene.slug in [agent["slug"] for agent in found]


def _catalog(scene: Scene, found: Any) -> None:
    assert "clock_now" in [entry["name"] for entry in found["tools"]]


def _runs(scene: Scene, found: Any) -> None:
    assert scene.run_id in [run["run_id"] for run in found["runs"]]
    assert {(run["agent_slug"], run["kind"]) for run in found["runs"]} == {(scene.slug, "test")}
    summary = set(wire.RunSummary.model_fields)  # compact rows: show_run has the whole one
    assert all(set(run) == summary for run in found["runs"]), found["runs"][0]


def _run(scene: Scene, found: Any) -> None:
    assert found["run"]["run_id"] == scene.run_id
    assert found["run"]["tool_resolution_trace"] is not None
    assert found["events"][-1]["kind"] == "finish"


def _explained(scene: Scene, found: Any) -> None:
    assert (found["kind"], found["subject"]) == ("run", scene.run_id)


def _why(scene: Scene, found: Any) -> None:
    assert (found["kind"], found["subject"]) == ("agent", scene.slug)


def _events(scene: Scene, found: Any) -> None:
    assert found["events"] == []


def _triggers(scene: Scene, found: Any) -> None:
    assert scene.trigger_id in [trigger["trigger_id"] for trigger in found]


def _doctor(scene: Scene, found: Any) -> None:
    assert isinstance(found["ok"], bool)


def _usage(scene: Scene, found: Any) -> None:
    assert found["totals"]["runs"] >= 1


def _tested(scene: Scene, found: Any) -> None:
    assert (found["kind"], found["status"]) == ("test", "succeeded")
    assert found["output_text"] == "Seen from MCP"


def _replayed(scene: Scene, found: Any) -> None:
    assert found["replay_of"] == scene.run_id
    assert found["output_text"] == "Seen broken checkout"


def _paused(scene: Scene, found: Any) -> None:
    assert (found["trigger_id"], found["status"]) == (scene.trigger_id, "paused")


def _resumed(scene: Scene, found: Any) -> None:
    assert (found["trigger_id"], found["status"]) == (scene.trigger_id, "active")


CALLS: dict[str, tuple[Callable[[Scene], dict[str, Any]], Check]] = {
    "list_agents": (lambda s: {}, _agents),
    "agent_tools": (lambda s: {"slug": s.slug}, _catalog),
    "list_runs": (lambda s: {"agent": s.slug, "status": "succeeded", "kind": "test"}, _runs),
    "show_run": (lambda s: {"run_id": s.run_id, "with_events": True}, _run),
    "explain_run": (lambda s: {"run_id": s.run_id}, _explained),
    "why_not_fired": (lambda s: {"slug": s.slug}, _why),
    "list_events": (lambda s: {"source": f"hook-{s.slug}", "limit": 5}, _events),
    "list_triggers": (lambda s: {}, _triggers),
    "doctor": (lambda s: {"agent": s.slug}, _doctor),
    "usage": (lambda s: {"since": "1h", "agent": s.slug}, _usage),
    "test_fire": (lambda s: {"slug": s.slug, "event_payload": {"title": "from MCP"}}, _tested),
    "replay_run": (lambda s: {"run_id": s.run_id}, _replayed),
    "pause_trigger": (lambda s: {"trigger_id": s.trigger_id}, _paused),
    "resume_trigger": (lambda s: {"trigger_id": s.trigger_id}, _resumed),
}
"""Each tool with arguments and what its answer must show (an editor calls them)."""
