"""The run rules of ``explain``: from a run row, its events and its trace to findings.

``diagnose_run`` is pure (the row, the events, a ``RunContext``), so each rule is pinned
by a test and ``explain`` on a run of many tool calls costs only the reading.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from cairn.domain.diagnosis import Explanation, Finding, by_severity
from cairn.domain.runs import LIVE_STATUSES, Run, RunEvent, ToolCall
from cairn.domain.trace import ToolResolutionTrace
from cairn.services.diagnosis.rules import (
    RunContext,
    model_error_reason,
    quote_json,
    seconds,
    seemingly_needed,
    skip_finding,
    stale_allowlist_finding,
)
from cairn.text import clip, iso, names, plural, tally

PROVIDER_SIDE = {
    "server_error": "model_server_error",
    "timeout": "model_timeout",
    "connection": "model_connection",
}


# --- run diagnosis -----------------------------------------------------------------------


def diagnose_run(run: Run, events: list[RunEvent], context: RunContext) -> Explanation:
    """The explanation of a run; pure, so every rule is pinned by a test."""
    d = _RunDiagnosis(run, events, context)
    findings = by_severity(d.findings())
    return Explanation(run.run_id, d.summary(findings), findings, "run")


class _RunDiagnosis:
    """The rules, one method per case. ``findings`` lists them root cause first."""

    def __init__(self, run: Run, events: list[RunEvent], context: RunContext) -> None:
        self.run = run
        self.events = events
        self.context = context
        self.agent = context.agent
        self.trace: ToolResolutionTrace | None = run.tool_resolution_trace
        self.slug = run.agent_slug

    # -- assembly --------------------------------------------------------------------------

    def findings(self) -> list[Finding]:
        run = self.run
        found: list[Finding] = []
        if run.status in LIVE_STATUSES:
            return [self.live()]
        if run.status == "cancelled":
            found.append(self.cancelled())
        elif run.status == "failed":
            found.extend(self.failure())
        found.extend(self.resolution())
        found.extend(self.calls())
        if run.status == "succeeded":
            found.extend(self.quiet_model())
            found.extend(self.retries())
        if not found:
            found.append(self.acted() if run.tool_calls else self.plain_success())
        elif run.tool_calls and not any(f.severity == "error" for f in found):
            found.append(self.acted())
        return found

    def summary(self, findings: list[Finding]) -> str:
        run = self.run
        state = run.status if run.outcome is None else f"{run.status}, {run.outcome}"
        head = f"Run {run.run_id} of {self.slug} ({state})"
        if not findings:
            return head + "."
        return f"{head}: {findings[0].cause}"

    # -- evidence helpers ----------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        return self.agent.model_settings.to_dict() if self.agent else {}

    def limit(self, name: str) -> Any:
        """A limit the run ran under, from its error event's ``limits`` (recorded by the
        runner), else the agent's setting now."""
        event = self.last_event("error")
        recorded = event.data.get("limits") if event is not None else None
        if isinstance(recorded, dict) and recorded.get(name) is not None:
            return recorded[name]
        return self.settings().get(name)

    def replay(self) -> str:
        return f"cairn runs replay {self.run.run_id}"

    def last_event(self, kind: str) -> RunEvent | None:
        return next((e for e in reversed(self.events) if e.kind == kind), None)

    def cut_call(self) -> ToolCall | None:
        """The call a deadline or cancel cut off (recorded as interrupted)."""
        for call in reversed(self.run.tool_calls):
            if call.error_kind == "interrupted":
                return call
        return None

    def call_event(self, call_id: str, kind: str = "tool_call") -> RunEvent | None:
        return next(
            (e for e in self.events if e.kind == kind and e.data.get("call_id") == call_id), None
        )

    def where(self) -> tuple[str, dict[str, Any]]:
        """Where a deadline or cancel caught the run: a hung call, the model, or resolution."""
        call = self.cut_call()
        if call is not None:
            started = self.call_event(call.call_id)
            evidence: dict[str, Any] = {
                "hung_call": {
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                    "error": call.error,
                    "tool_call_seq": started.seq if started else None,
                }
            }
            ran = ""
            if started and started.created_at and self.run.finished_at:
                seconds = (self.run.finished_at - started.created_at).total_seconds()
                evidence["hung_call"]["ran_s"] = round(seconds, 3)
                ran = f" after {seconds:.1f} s"
            return (
                f"while tool {call.name!r} (call {call.call_id}) was still running{ran}",
                evidence,
            )
        if self.trace is None:
            return "while resolving tools", {"tool_resolution_trace": None}
        return "while waiting for the model", {
            "last_event": self.events[-2].to_dict() if len(self.events) > 1 else None
        }

    # -- live --------------------------------------------------------------------------------

    def live(self) -> Finding:
        run = self.run
        open_calls = [c for c in run.tool_calls if c.result is None and c.error is None]
        evidence: dict[str, Any] = {"status": run.status, "heartbeat_at": iso(run.heartbeat_at)}
        cause = f"the run is still {run.status}"
        if open_calls:
            call = open_calls[-1]
            evidence["open_call"] = {"call_id": call.call_id, "name": call.name}
            cause += f", waiting on tool {call.name!r} (call {call.call_id})"
        return Finding(
            "run_live",
            "info",
            cause + ".",
            f"Follow it with `cairn runs follow {run.run_id}` and explain it once it ends; "
            f"`cairn runs cancel {run.run_id}` stops it.",
            evidence,
        )

    # -- failures ----------------------------------------------------------------------------

    def cancelled(self) -> Finding:
        where, evidence = self.where()
        return Finding(
            "cancelled",
            "warning",
            f"The run was cancelled {where}, before it finished.",
            f"Nothing to fix if that was intended; to run it again on the same event: "
            f"`{self.replay()}`.",
            {"status": "cancelled", "error_message": self.run.error_message, **evidence},
        )

    def failure(self) -> list[Finding]:
        error_type = self.run.error_type or ""
        if error_type == "model_error":
            return [self.model_error()]
        if error_type == "max_turns_exceeded":
            return [self.max_turns()]
        if error_type == "timeout":
            return [self.timeout()]
        if error_type == "tool_failure":
            return [self.tool_crash()]
        if error_type == "worker_lost":
            return [
                Finding(
                    "worker_lost",
                    "error",
                    "The worker running the run stopped sending heartbeats (the server was "
                    "killed or crashed), so the run was ended.",
                    f"Check the server's log around {iso(self.run.heartbeat_at)}; "
                    f"run it again with `{self.replay()}`.",
                    self.error_evidence(),
                )
            ]
        return [
            Finding(
                "run_failed",
                "error",
                f"The run failed ({error_type or 'unknown error'}): "
                f"{clip(self.run.error_message or 'no message')}.",
                "Read the error above; `cairn runs show "
                f"{self.run.run_id} --events` has the full timeline. "
                + (
                    "An internal error is a bug in Cairn: report it with "
                    f"`cairn runs show {self.run.run_id} --json`."
                    if error_type == "internal_error"
                    else f"After fixing it: `{self.replay()}`."
                ),
                self.error_evidence(),
            )
        ]

    def error_evidence(self) -> dict[str, Any]:
        event = self.last_event("error")
        evidence: dict[str, Any] = {
            "status": self.run.status,
            "error_type": self.run.error_type,
            "error_message": self.run.error_message,
        }
        if event is not None:
            evidence["error_event_seq"] = event.seq
        return evidence

    def model_error(self) -> Finding:
        reason, source = model_error_reason(self.run, self.events)
        retries = [e for e in self.events if e.kind == "retry"]
        backend = (self.run.model or "").split(":", 1)[0] or "the backend"
        model = (self.run.model or "").split(":", 1)[-1]
        message = clip(self.run.error_message or "", 240)
        evidence = self.error_evidence() | {
            "reason": reason,
            "reason_from": source,
            "model": self.run.model,
        }
        if retries:
            evidence["retry_events"] = [
                {k: e.data.get(k) for k in ("attempt", "reason", "status_code", "wait_s")}
                | {"seq": e.seq}
                for e in retries
            ]
        waited = sum(float(e.data.get("wait_s") or 0) for e in retries)
        gave_up = ""
        if retries:
            gave_up = f" after {plural(len(retries), 'retry')} over {seconds(waited)}"
        update = f"cairn agent update {self.slug}"
        if reason == "auth":
            from cairn.models.base import ENV_KEYS

            keys = ENV_KEYS.get(backend)
            where = " or ".join(keys) if keys else "the backend's API key"
            return Finding(
                "model_auth",
                "error",
                f"The model backend {backend!r} refused the credentials: {message}.",
                f"Set a valid API key for {backend} ({where}) in the environment of the "
                f"process that runs the agent (the server for triggers), then `{self.replay()}`.",
                evidence,
            )
        if reason == "rate_limited":
            trigger = (
                f"; if a trigger fires it too often, cap it: "
                f"`cairn agent trigger update {self.run.trigger_id} --rate-limit N`"
                if self.run.trigger_id
                else ""
            )
            return Finding(
                "model_rate_limited",
                "error",
                f"The provider rate-limited the model calls{gave_up} and the run gave up: "
                f"{message}.",
                f"Wait for the provider's limit to reset and `{self.replay()}`; raise the "
                f"account's rate limits or quota{trigger}.",
                evidence,
            )
        if reason == "context_too_long":
            evidence["tokens_in"] = self.run.usage.tokens_in
            evidence["tool_calls"] = len(self.run.tool_calls)
            return Finding(
                "model_context_too_long",
                "error",
                f"The request was longer than model {model!r} accepts (system prompt, event "
                f"payload and {plural(len(self.run.tool_calls), 'tool result')} so far): "
                f"{message}.",
                "Shorten the system prompt or the event payload, make tools return less, or "
                f"use a model with a longer context: `{update} --model <model>`; then "
                f"`{self.replay()}`.",
                evidence,
            )
        if reason == "unknown_model":
            return Finding(
                "model_unknown",
                "error",
                f"The provider does not know model {model!r}: {message}.",
                f"Pick a model the provider serves: `{update} --model <model>`.",
                evidence,
            )
        if reason in PROVIDER_SIDE:
            return Finding(
                PROVIDER_SIDE[reason],
                "error",
                f"The model provider failed on its side ({reason.replace('_', ' ')}){gave_up}: "
                f"{message}.",
                f"Usually transient: `{self.replay()}` later. If the provider is a local or "
                "OpenAI-compatible server, check it is up and its base_url is right.",
                evidence,
            )
        if reason == "bad_request":
            return Finding(
                "model_bad_request",
                "error",
                f"The provider rejected the request: {message}.",
                f"Fix the model settings it names (`{update} --temperature/--max-tokens/"
                f"--model …`), then `{self.replay()}`.",
                evidence,
            )
        return Finding(
            "model_error",
            "error",
            f"The model backend {backend!r} raised an error: {message}.",
            f"Read the error; after fixing it, `{self.replay()}`.",
            evidence,
        )

    def max_turns(self) -> Finding:
        limit = self.limit("max_turns")
        counts = Counter(call.name for call in self.run.tool_calls)
        looping = [name for name, count in counts.most_common() if count > 1]
        calls = tally(counts, 5)
        cause = (
            f"The model still asked for tools after max_turns={limit} turns "
            f"({plural(len(self.run.tool_calls), 'tool call')}: {calls or 'none'})."
        )
        advice = (
            f"It kept calling {names(looping)}: tell the system prompt when to stop and answer "
            "(e.g. 'once you have the result, reply'); "
            if looping
            else ""
        )
        more = (limit or 8) * 2
        return Finding(
            "max_turns",
            "error",
            cause,
            f"{advice}if it really needs more steps, `cairn agent update {self.slug} "
            f"--max-turns {min(more, 100)}`; then `{self.replay()}`.",
            self.error_evidence()
            | {"max_turns": limit, "tool_call_counts": dict(counts.most_common())},
        )

    def timeout(self) -> Finding:
        limit = self.limit("timeout_s")
        where, evidence = self.where()
        call = self.cut_call()
        longer = f"`cairn agent update {self.slug} --timeout-s {float(limit or 60) * 2:g}`"
        if call is not None:
            source = self.context.source_of_tool(call.name)
            check = (
                f"check its server with `cairn source test {source.label}`"
                if source is not None
                else "check what it waits on"
            )
            fix = (
                f"Find out why {call.name!r} hangs ({check}); if it is just slow, give the "
                f"run more time: {longer}."
            )
        elif self.trace is None:
            fix = (
                "A tool source hung while listing its tools; lower CAIRN_RESOLVE_TIMEOUT_S "
                f"so it is skipped sooner, or give the run more time: {longer}."
            )
        else:
            fix = (
                "The model did not answer in time: check the provider's status (or a slow "
                f"local server), or give the run more time: {longer}."
            )
        return Finding(
            "timeout",
            "error",
            f"The run hit its timeout_s={limit:g} s {where}." if limit else f"Timed out {where}.",
            fix,
            self.error_evidence() | {"timeout_s": limit} | evidence,
        )

    def tool_crash(self) -> Finding:
        failed = [c for c in self.run.tool_calls if c.error]
        call = failed[-1] if failed else None
        name = call.name if call else "a tool"
        source = self.context.source_of_tool(call.name) if call else None
        check = f" (`cairn source test {source.label}`)" if source else ""
        return Finding(
            "tool_crashed",
            "error",
            f"Tool {name!r}"
            + (f" (call {call.call_id})" if call else "")
            + f" crashed and ended the run: {clip(self.run.error_message or '')}.",
            f"Fix the tool or its server{check}; a tool should return an error result "
            f"rather than raise. Then `{self.replay()}`.",
            self.error_evidence() | ({"tool_call": _call(call)} if call else {}),
        )

    # -- resolution -------------------------------------------------------------------------

    def resolution(self) -> list[Finding]:
        trace = self.trace
        if trace is None:
            return []
        found: list[Finding] = []
        if not trace.sources_resolved and not trace.sources_skipped:
            found.append(self.no_sources())
        nothing = not trace.tool_names_advertised
        for skip in trace.sources_skipped:
            found.append(
                skip_finding(
                    skip,
                    self.context,
                    self.slug,
                    suffix=f"; then `{self.replay()}`",
                    entries=[
                        m
                        for m in trace.allowlist_missing_entries
                        if m.possibly_from_skipped == skip.label
                    ],
                )
            )
        stale = [m for m in trace.allowlist_missing_entries if not m.possibly_from_skipped]
        if stale:
            found.append(
                stale_allowlist_finding(
                    self.slug,
                    stale,
                    self.agent.tool_allowlist if self.agent else [],
                    advertised=trace.tool_names_advertised,
                )
            )
        needed = self.needed_but_filtered()
        if needed is not None:
            found.append(needed)
        if (
            nothing
            and trace.sources_resolved
            and not trace.allowlist_missing_entries
            and not trace.sources_skipped
        ):
            found.append(self.nothing_advertised())
        return found

    def no_sources(self) -> Finding:
        configured = self.agent.tool_sources if self.agent else []
        if self.agent is not None and configured == []:
            return Finding(
                "tool_less_by_choice",
                "info",
                "The agent is tool-less by choice (tool_sources is []): it answers in text, "
                "and that is what it did.",
                "Nothing to fix. If it should act, give it sources: "
                f"`cairn agent update {self.slug} --tool-sources default`.",
                {"sources_resolved": [], "sources_skipped": [], "tool_sources": configured},
            )
        return Finding(
            "no_tool_sources",
            "warning",
            "The agent has no tool sources (tool_sources is []), so the model was offered no "
            "tools and could only answer in text.",
            "If it should act, give it sources: "
            f"`cairn agent update {self.slug} --tool-sources default` (builtin plus every MCP "
            f"and integration source) or a list such as {quote_json(['builtin'])}.",
            {
                "sources_resolved": [],
                "sources_skipped": [],
                "tool_names_advertised": [],
                "tool_sources": configured,
            },
        )

    def nothing_advertised(self) -> Finding:
        trace = self.trace
        assert trace is not None
        resolved = [s.to_dict() for s in trace.sources_resolved]
        if trace.allowlist_filtered_out:
            cause = (
                f"The allowlist let none of the {len(trace.allowlist_filtered_out)} real tools "
                f"through ({names(trace.allowlist_filtered_out)}), so nothing was advertised."
            )
            fix = (
                "Allow the tools the agent needs: `cairn agent update "
                f"{self.slug} --tool-allowlist {quote_json(trace.allowlist_filtered_out[:3])}`."
            )
        else:
            cause = "Its sources built but gave no tools, so nothing was advertised."
            fix = "Check what each source serves: `cairn agent tools " + self.slug + "`."
        return Finding(
            "no_tools_advertised",
            "error",
            cause,
            fix,
            {
                "sources_resolved": resolved,
                "tool_names_advertised": [],
                "allowlist_filtered_out": trace.allowlist_filtered_out,
            },
        )

    def needed_but_filtered(self) -> Finding | None:
        trace = self.trace
        if trace is None or not trace.allowlist_filtered_out:
            return None
        called = {call.name for call in self.run.tool_calls}
        prompt = self.agent.system_prompt if self.agent else ""
        matches = seemingly_needed(
            [n for n in trace.allowlist_filtered_out if n not in called],
            prompt,
            self.run.event_payload,
            self.context.namespaces(),
        )
        if not matches:
            return None
        wanted = list(matches)
        allowlist = list(self.agent.tool_allowlist) if self.agent else []
        new_allowlist = allowlist + [n for n in wanted if n not in allowlist]
        said = "; ".join(
            f"{name} (the {where} mentions {names([repr(w) for w in words])})"
            for name, (where, words) in matches.items()
        )
        return Finding(
            "allowlist_blocks_needed_tool",
            "warning",
            f"The allowlist filtered out {plural(len(wanted), 'tool')} the task seems to "
            f"need: {said}.",
            "If the agent should use them, allow them: "
            f"`cairn agent update {self.slug} --tool-allowlist {quote_json(new_allowlist)}`.",
            {
                "allowlist_filtered_out": trace.allowlist_filtered_out,
                "tool_allowlist": allowlist,
                "matched_words": {name: words for name, (_where, words) in matches.items()},
            },
        )

    # -- tool calls -------------------------------------------------------------------------

    def calls(self) -> list[Finding]:
        found: list[Finding] = []
        unadvertised = [c for c in self.run.tool_calls if c.error_kind == "not_advertised"]
        for call in unadvertised:
            found.append(self.unadvertised(call))
        crashed_last = self.run.error_type == "tool_failure"
        errored = [
            c
            for c in self.run.tool_calls
            if c.error and c.error_kind not in ("not_advertised", "interrupted")
        ]
        if crashed_last and errored:
            errored = errored[:-1]  # the crash has its own finding
        if errored:
            found.append(self.tool_errors(errored))
        return found

    def unadvertised(self, call: ToolCall) -> Finding:
        trace = self.trace or ToolResolutionTrace()
        advertised = trace.tool_names_advertised
        evidence: dict[str, Any] = {
            "tool_call": _call(call),
            "tool_names_advertised": advertised,
            "allowlist_filtered_out": trace.allowlist_filtered_out,
        }
        if call.name in trace.allowlist_filtered_out:
            allowlist = list(self.agent.tool_allowlist) if self.agent else []
            return Finding(
                "unadvertised_tool_call",
                "error",
                f"The model called {call.name!r} (call {call.call_id}), a real tool that the "
                "allowlist filtered out, so it was not run.",
                "If the agent should use it, allow it: "
                f"`cairn agent update {self.slug} --tool-allowlist "
                f"{quote_json([*allowlist, call.name])}`; otherwise tell the prompt to use "
                f"{names(advertised[:3]) or 'the tools it has'}.",
                evidence,
            )
        from cairn.tools.resolution import suggest_tool_names

        owner = self.context.source_of_tool(call.name)
        skipped = next(
            (
                s
                for s in trace.sources_skipped
                if owner is not None and s.source_id in (owner.source_id, owner.label)
            ),
            None,
        )
        if skipped is not None:
            return Finding(
                "unadvertised_tool_call",
                "error",
                f"The model called {call.name!r} (call {call.call_id}), a tool of source "
                f"{skipped.label!r}, which was skipped for this run ({skipped.reason}), so it "
                "was not run.",
                f"Bring the source back (`cairn source test {skipped.label}` says what is "
                f"wrong), then `{self.replay()}`.",
                evidence | {"skipped_source": skipped.to_dict()},
            )
        real = advertised + trace.allowlist_filtered_out
        close = suggest_tool_names(call.name, real)
        if close:
            fix = (
                f"The closest real tools are {names(close)}: name them in the system prompt "
                "instead."
            )
        elif advertised:
            fix = f"Name the real tools in the system prompt: {names(advertised)}."
        else:
            fix = (
                f"The run was offered no tools at all: give the agent sources "
                f"(`cairn agent tools {self.slug}` shows what it gets now)."
            )
        return Finding(
            "unadvertised_tool_call",
            "error",
            f"The model called {call.name!r} (call {call.call_id}), which no source provides "
            "(an invented or outdated tool name), so it was not run.",
            fix,
            evidence | {"suggestions": close},
        )

    def tool_errors(self, errored: list[ToolCall]) -> Finding:
        lines = "; ".join(
            f"{c.name} (call {c.call_id}) with {clip(json.dumps(c.arguments, default=str), 80)}: "
            f"{clip(c.error or '', 120)}"
            for c in errored[:5]
        )
        more = f" and {len(errored) - 5} more" if len(errored) > 5 else ""
        kinds = Counter(c.error_kind or "tool_error" for c in errored)
        fixes = [
            self.tool_error_fix(kind, [c for c in errored if c.error_kind == kind])
            for kind in kinds
        ]
        return Finding(
            "tool_errors",
            "error",
            f"{plural(len(errored), 'tool call')} returned an error: {lines}{more}.",
            " ".join(f for f in fixes if f) + f" Then `{self.replay()}`.",
            {
                "error_kinds": dict(kinds.most_common()),
                "tool_calls": [
                    {
                        "call_id": c.call_id,
                        "name": c.name,
                        "arguments": c.arguments,
                        "error": c.error,
                        "error_kind": c.error_kind,
                        "tool_result_seq": getattr(
                            self.call_event(c.call_id, "tool_result"), "seq", None
                        ),
                    }
                    for c in errored
                ],
            },
        )

    def tool_error_fix(self, kind: str, calls: list[ToolCall]) -> str:
        """The remedy for one ``error_kind`` (``cairn.domain.runs.ToolErrorKind``)."""
        failing = sorted({c.name for c in calls})
        labels = sorted(
            {s.label for s in map(self.context.source_of_tool, failing) if s is not None}
        )
        if kind == "host_not_allowed":
            hosts = sorted({_host(c.arguments.get("url")) for c in calls} - {""})
            return (
                "http_request may only reach the hosts in the server's "
                "CAIRN_HTTP_ALLOWED_HOSTS setting (comma-separated), which lacks "
                f"{names([repr(h) for h in hosts]) or 'the host'}: "
                "add it there and restart `cairn serve` if the agent should reach it (the "
                "prompt is not the problem)."
            )
        if kind == "server_lost":
            where = names([repr(label) for label in labels]) or "the tool's MCP server"
            return (
                f"The connection to {where} failed during the call (the server died or "
                "dropped it mid-call), so a `cairn source test` afterwards may well pass: check "
                "the server's own log at the time of the call and why it stopped."
            )
        if kind == "rate_capped":
            return (
                f"The source's calls-per-minute cap refused {plural(len(calls), 'call')}: "
                "raise the cap on the source or make the agent call less often."
            )
        if kind == "not_connected":
            label = labels[0] if labels else "<source>"
            return f"The source was not connected: `cairn source test {label}`."
        if kind == "refused":
            return (
                "The tool refused the caller (a missing grant or role): fire it with a key "
                "that may act."
            )
        checks = [f"`cairn source test {label}`" for label in labels]
        check = f" If a server misbehaves, {names(checks)}." if checks else ""
        return (
            "Each error says what the tool disliked: usually arguments the model built wrong "
            "(make the prompt say how to fill them; `cairn agent tools "
            f"{self.slug}` shows each schema) or a tool-side fault.{check}"
        )

    # -- quiet model, success -------------------------------------------------------------

    def quiet_model(self) -> list[Finding]:
        run = self.run
        trace = self.trace
        if run.tool_calls or trace is None or not trace.tool_names_advertised:
            return []
        finish = self.last_event("finish")
        stop = str(finish.data.get("stop_reason")) if finish else None
        advertised = trace.tool_names_advertised
        evidence: dict[str, Any] = {
            "outcome": run.outcome,
            "tool_names_advertised": advertised,
            "stop_reason": stop,
            "finish_event_seq": finish.seq if finish else None,
            "output_text": run.output_text,
        }
        offered = f"{plural(len(advertised), 'tool')} {names(advertised)}"
        if stop == "max_tokens":
            settings = self.settings()
            limit = settings.get("max_tokens", 1024)
            return [
                Finding(
                    "model_hit_max_tokens",
                    "error",
                    f"The model was offered {offered} but ran out of max_tokens={limit} "
                    "before it called any (stop_reason 'max_tokens').",
                    f"`cairn agent update {self.slug} --max-tokens {int(limit) * 2}`, then "
                    f"`{self.replay()}`.",
                    evidence | {"max_tokens": limit},
                )
            ]
        fix = (
            "Make the system prompt say when to call which tool (e.g. 'for every order id, "
            f"call {advertised[0]}'), and check the event carries what the tools need; then "
            f"`{self.replay()}`."
        )
        if run.output_text.strip():
            return [
                Finding(
                    "model_chose_no_tool",
                    "warning",
                    f"The model was offered {offered} but called none: it answered in text "
                    f"only (stop_reason {stop!r}): {clip(run.output_text, 200)!r}.",
                    fix,
                    evidence,
                )
            ]
        return [
            Finding(
                "model_chose_no_tool",
                "warning",
                f"The model was offered {offered} but called none and said nothing "
                f"(stop_reason {stop!r}, empty final text): a silent no-op.",
                fix,
                evidence,
            )
        ]

    def retries(self) -> list[Finding]:
        retries = [e for e in self.events if e.kind == "retry"]
        if not retries:
            return []
        reasons = sorted({str(e.data.get("reason")) for e in retries})
        waited = sum(float(e.data.get("wait_s") or 0) for e in retries)
        return [
            Finding(
                "model_retried",
                "info",
                f"The model call was retried {plural(len(retries), 'time')} "
                f"({', '.join(reasons)}), waiting {seconds(waited)} in all, before it went "
                "through.",
                "Nothing to fix unless it is frequent; then raise the provider's limits.",
                {"retry_events": [e.seq for e in retries], "reasons": reasons},
            )
        ]

    def acted(self) -> Finding:
        calls = self.run.tool_calls
        used = list(dict.fromkeys(call.name for call in calls))
        ok = [c for c in calls if not c.error]
        return Finding(
            "acted",
            "info",
            f"It acted: it called {names(used)} ({plural(len(calls), 'call')}, "
            + (
                "all returned results)."
                if len(ok) == len(calls)
                else f"{len(ok)} returned results)."
            ),
            "Nothing to fix.",
            {
                "outcome": self.run.outcome,
                "tool_calls": [
                    {"call_id": c.call_id, "name": c.name, "ok": c.error is None} for c in calls
                ],
            },
        )

    def plain_success(self) -> Finding:
        return Finding(
            "answered",
            "info",
            f"It answered in text with no tools to call: {clip(self.run.output_text, 200)!r}.",
            "Nothing to fix.",
            {"outcome": self.run.outcome, "output_text": self.run.output_text},
        )


def _call(call: ToolCall) -> dict[str, Any]:
    return {"call_id": call.call_id, "name": call.name, "error": call.error}


def _host(url: Any) -> str:
    try:
        return urlsplit(str(url or "")).hostname or ""
    except ValueError:
        return ""
