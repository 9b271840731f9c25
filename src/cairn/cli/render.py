"""Rendering for people: tables, the run view and the trace, with rich (imported here only).

Each view takes the JSON an operation answered with, as ``--json`` prints it."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from cairn.domain.agents import agent_from_dict
from cairn.domain.runs import LIVE_STATUSES, event_from_dict, run_from_dict
from cairn.domain.sources import source_from_dict
from cairn.domain.trace import ToolResolutionTrace
from cairn.text import clip

# Piped output (grep, less, a log) gets full-width rows instead of 80 squeezed columns.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def Table(*columns: str) -> RichTable:
    """A table with borders for a terminal; piped (grep, awk, a file), plain columns with no
    box characters to strip."""
    if sys.stdout.isatty():
        return RichTable(*columns)
    return RichTable(*columns, box=None, pad_edge=False, show_edge=False)


STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "queued": "cyan",
}
QUIET_OUTCOMES = {"model_chose_no_tool", "no_tools_available", "interrupted", "tool_errors"}


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _outcome(outcome: str | None) -> Text:
    if outcome is None:
        return Text("-", style="dim")
    return Text(outcome, style="bold yellow" if outcome in QUIET_OUTCOMES else "")


def agents_table(found: list[dict[str, Any]]) -> None:
    """``cairn agent list``."""
    table = Table("slug", "name", "status", "version", "backend", "sources", "allowlist")
    for agent in map(agent_from_dict, found):
        table.add_row(
            agent.slug,
            agent.name,
            agent.status,
            str(agent.version),
            f"{agent.model_settings.backend}:{agent.model_settings.model}",
            "default" if agent.tool_sources is None else (", ".join(agent.tool_sources) or "none"),
            ", ".join(agent.tool_allowlist) or "all",
        )
    console.print(table)


def agent_detail(found: dict[str, Any]) -> None:
    """``cairn agent show``."""
    agent = agent_from_dict(found)
    settings = agent.model_settings
    console.print(f"[bold]{agent.slug}[/]  {agent.name}  ({agent.status}, version {agent.version})")
    if agent.description:
        console.print(agent.description)
    console.print(f"id: {agent.agent_id}")
    console.print(
        f"model: {settings.backend}:{settings.model}  temperature={settings.temperature}  "
        f"max_tokens={settings.max_tokens}  max_turns={settings.max_turns}  "
        f"timeout_s={settings.timeout_s:g}"
        + (f"  base_url={settings.base_url}" if settings.base_url else "")
    )
    sources = (
        "sandbox default"
        if agent.tool_sources is None
        else (", ".join(agent.tool_sources) or "none (tool-less by choice)")
    )
    console.print(f"tool sources: {sources}")
    console.print(f"tool allowlist: {', '.join(agent.tool_allowlist) or 'all resolved tools'}")
    console.print("[bold]system prompt[/]")
    console.print(Text(agent.system_prompt))


def trace_view(trace: ToolResolutionTrace | None) -> None:
    """The tool-resolution trace, with what explains a silent run first."""
    if trace is None:
        console.print("[dim]no tool-resolution trace (the run ended before tools resolved)[/]")
        return
    console.print(f"[bold]tool resolution[/] ({trace.duration_ms:.1f} ms)")
    for resolved in trace.sources_resolved:
        hidden = (
            f", {len(resolved.hidden_by_source)} hidden by the source's allowed tools"
            if resolved.hidden_by_source
            else ""
        )
        console.print(
            f"  [green]resolved[/] {resolved.label} ({resolved.kind}): "
            f"{resolved.tool_count} tools{hidden}"
        )
    for skipped in trace.sources_skipped:
        console.print(
            f"  [red]skipped[/]  {skipped.label} ({skipped.kind}): "
            f"[bold]{skipped.reason}[/] - {skipped.message}"
        )
    advertised = ", ".join(trace.tool_names_advertised) or "[bold red]none[/]"
    console.print(f"  advertised: {advertised}")
    if trace.allowlist_filtered_out:
        console.print(f"  filtered out by allowlist: {', '.join(trace.allowlist_filtered_out)}")
    for missing in trace.allowlist_missing_entries:
        hint = f" - did you mean {', '.join(missing.suggestions)}?" if missing.suggestions else ""
        origin = (
            f" (source {missing.possibly_from_skipped} was skipped)"
            if missing.possibly_from_skipped
            else ""
        )
        console.print(f"  [bold yellow]stale allowlist entry[/] {missing.entry!r}{origin}{hint}")
    for conflict in trace.name_conflicts:
        console.print(f"  [yellow]name conflict[/] {conflict}: an earlier source's tool was kept")


def catalog(found: dict[str, Any]) -> None:
    """``cairn agent tools``: the tools the agent would see, then the trace."""
    if found["tools"]:
        for tool in found["tools"]:
            console.print(f"[bold]{tool['name']}[/]  {tool['description']}")
    else:
        console.print("[bold red]no tools would be advertised[/]")
    trace_view(ToolResolutionTrace.from_dict(found["trace"]))


def runs_table(found: list[dict[str, Any]], limit: int, *, with_agent: bool = False) -> None:
    """``cairn agent runs`` (and ``cairn runs list``, ``with_agent``)."""
    runs = [run_from_dict(run) for run in found]
    columns = ["run_id", "created", "kind", "status", "outcome", "tools", "tokens", "ms", "error"]
    table = Table(*(["run_id", "agent", *columns[1:]] if with_agent else columns))
    for run in runs:
        table.add_row(
            run.run_id,
            *([run.agent_slug] if with_agent else []),
            run.created_at.strftime("%Y-%m-%d %H:%M:%S") if run.created_at else "",
            run.kind,
            _status(run.status),
            _outcome(run.outcome),
            str(len(run.tool_calls)),
            f"{run.usage.tokens_in}/{run.usage.tokens_out}",
            f"{run.duration_ms:.0f}" if run.duration_ms is not None else "",
            clip(run.error_message or "", 40),
        )
    console.print(table)
    if runs and len(runs) == limit:
        console.print(f"[dim]next page: --before {runs[-1].run_id}[/]")


def run_detail(found: dict[str, Any], events: list[dict[str, Any]] | None = None) -> None:
    """``cairn runs show`` and the result of ``cairn agent test``."""
    run = run_from_dict(found)
    console.print(
        Text.assemble(
            (run.run_id, "bold"), "  ", _status(run.status), "  outcome ", _outcome(run.outcome)
        )
    )
    console.print(
        f"agent {run.agent_slug} v{run.agent_version} · {run.kind}"
        + (f" · trigger {run.trigger_id}" if run.trigger_id else "")
        + f" · {run.model or ''}"
    )
    duration = f"{run.duration_ms:.1f} ms" if run.duration_ms is not None else "-"
    console.print(
        f"tokens in {run.usage.tokens_in} / out {run.usage.tokens_out}"
        f" (cache read {run.usage.cache_read_tokens}, write {run.usage.cache_write_tokens})"
        f" · duration {duration}"
        + (f" · cost {run.cost_micros / 1e6:.6f}" if run.cost_micros is not None else "")
    )
    if run.error_message:
        console.print(f"[red]error ({run.error_type}):[/] {run.error_message}")
    console.print("[bold]event payload[/]")
    console.print(Text(json.dumps(run.event_payload, indent=2, default=str)))
    if run.tool_calls:
        console.print(f"[bold]tool calls[/] ({len(run.tool_calls)})")
        for call in run.tool_calls:
            outcome = (
                Text(f"error: {clip(call.error, 200)}", style="red")
                if call.error
                else Text(f"-> {clip(call.result, 200)}")
            )
            console.print(
                Text.assemble(
                    f"  {call.call_id} ",
                    (call.name, "bold"),
                    f"({clip(call.arguments, 120)}) ",
                    outcome,
                    f"  [{call.duration_ms:.1f} ms]",
                )
            )
    else:
        console.print("[bold]tool calls[/] none")
    console.print("[bold]output[/]")
    console.print(Text(run.output_text) if run.output_text else Text("(empty)", style="dim"))
    trace_view(run.tool_resolution_trace)
    if events is not None:
        console.print(f"[bold]events[/] ({len(events)})")
        for event in map(event_from_dict, events):
            console.print(f"  {event.seq:>4} {event.kind:<11} {clip(event.data, 100)}")


def sources_table(found: list[dict[str, Any]]) -> None:
    """``cairn source list``."""
    table = Table()
    table.add_column("source_id", no_wrap=True, min_width=30)
    for header in ("label", "kind", "transport", "namespace", "status", "reason"):
        table.add_column(header)
    for source in map(source_from_dict, found):
        table.add_row(
            source.source_id,
            source.label,
            source.kind,
            str(source.config.get("transport", "-")),
            str(source.config.get("namespace", "-")),
            _status(source.status) if source.status != "active" else Text("active", "green"),
            clip(source.status_reason or "", 50),
        )
    console.print(table)


def source_detail(found: dict[str, Any]) -> None:
    """``cairn source show``: configuration and status, secrets by name only."""
    source = source_from_dict(found)
    console.print(f"[bold]{source.label}[/] ({source.kind}) {source.source_id}")
    console.print(
        f"status: {source.status}" + (f" - {source.status_reason}" if source.status_reason else "")
    )
    for key, value in sorted(source.config.items()):
        console.print(f"  {key}: {clip(value, 120)}")
    if source.checked_at:
        console.print(f"last checked: {source.checked_at.isoformat()}")


def warn(message: str) -> None:
    """A warning on stderr that does not change the exit code."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[yellow]warning:[/] {message}")


def _summary_line(summary: dict[str, Any]) -> Text:
    status = summary["status"]
    parts: list[Any] = [
        (summary["run_id"], "bold"),
        "  ",
        _status(status),
        "  ",
        summary.get("kind") or "",
    ]
    if status not in LIVE_STATUSES:
        parts += [
            "  outcome ",
            _outcome(summary.get("outcome")),
            f"  tools {summary.get('tool_calls', 0)}",
            f"  tokens {summary.get('tokens_in', 0)}/{summary.get('tokens_out', 0)}",
        ]
        if summary.get("duration_ms") is not None:
            parts.append(f"  {summary['duration_ms']:.0f} ms")
        if summary.get("error_message"):
            parts.append(Text(f"  {clip(summary['error_message'], 80)}", style="red"))
    return Text.assemble(*parts)


def follow_runs(stream: Any, recent: list[dict[str, Any]], as_json: bool) -> None:
    """``cairn agent runs --follow``: the recent runs, then each run as it starts and ends."""

    def show(run: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(run, default=str), flush=True)
        else:
            console.print(_summary_line(run))

    for run in reversed(recent):
        show(run)
    if not as_json:
        console.print("[dim]following; Ctrl-C to stop[/]")
    for event in stream:
        if event.event == "run":
            show(event.data)


def follow_events(stream: Any, as_json: bool) -> str | None:
    """``cairn runs follow``: text as it streams, tool calls and results; returns the final
    status from the ``end`` event."""
    for event in stream:
        if as_json:
            print(json.dumps({"event": event.event, "data": event.data}, default=str), flush=True)
            if event.event == "end":
                return str(event.data.get("status"))
            continue
        data = event.data.get("data", {}) if event.event != "end" else event.data
        if event.event == "text":
            console.print(Text(data.get("delta", "")), end="")
        elif event.event == "tool_call":
            console.print(
                Text.assemble("\n→ ", (data["name"], "bold"), f"({clip(data['arguments'], 120)})")
            )
        elif event.event == "tool_result":
            if data.get("error"):
                console.print(Text(f"  ✗ {clip(data['error'], 200)}", style="red"))
            else:
                console.print(Text(f"  ← {clip(data.get('result'), 200)}"))
        elif event.event == "retry":
            console.print(
                Text(
                    f"\n↻ retry {data.get('attempt')} in {data.get('wait_s')} s: "
                    f"{clip(data.get('message'), 120)}",
                    style="yellow",
                )
            )
        elif event.event == "error":
            console.print(Text(f"\n✗ {data.get('message')}", style="red"))
        elif event.event == "end":
            console.print(
                Text.assemble(
                    "\n",
                    _status(str(data.get("status"))),
                    "  outcome ",
                    _outcome(data.get("outcome")),
                )
            )
            return str(data.get("status"))
    return None
