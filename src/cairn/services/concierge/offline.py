"""The Concierge's offline interpreter: a deterministic reading of the question
(``cairn.services.concierge.questions``) that calls the services (runs, diagnosis, usage,
catalogs, triggers) and phrases what they return, one handler per intent (the questions
each answers are listed in ``docs/concierge.md``).

Anything else gets the list of what the Concierge can do. Destructive questions are
always answered offline, so "it prints the command instead" holds whatever model runs.
The answer names things that do not exist (a run id, an agent) rather than raising.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cairn.domain.keys import Role, role_allows
from cairn.domain.runs import NO_OP_OUTCOMES
from cairn.domain.triggers import TriggerStatus
from cairn.errors import NotFound
from cairn.services.app import App
from cairn.services.concierge.questions import EVENT_ID, Question, cited_run_ids, commands_in
from cairn.text import capitalised, clip, plural, record, unique

if TYPE_CHECKING:
    from cairn.domain.agents import Agent
    from cairn.domain.diagnosis import Explanation, Finding
    from cairn.domain.runs import Run

AnswerMode = Literal["offline", "agent"]

QUIET_OUTCOMES = (*NO_OP_OUTCOMES, "interrupted")
READ_ONLY_TOOLS = frozenset({"clock_now", "json_extract", "regex_find"})
"""Tools known to only read (the builtins that do); any other may act, so a test fire of an
agent offered one asks for confirmation first."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the Concierge said: the text, the run ids it cites, the CLI commands it
    suggests (never run for you when they destroy), how it answered, and its own run."""

    text: str
    run_ids: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    mode: AnswerMode = "offline"
    concierge_run_id: str | None = None
    intent: str = "help"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the API response, ``cairn ask --json``)."""
        return record(self)


async def answer_offline(
    app: App,
    sandbox_id: str,
    agents: list[Agent],
    parsed: Question,
    role: Role,
    confirmed: bool = False,
) -> Answer:
    """Answer ``parsed`` without a model: one handler per intent."""
    return await _Interpreter(app, sandbox_id, agents, parsed, role, confirmed).answer()


@dataclass(slots=True)
class _Interpreter:
    """Routes a parsed question (``q``) to one handler; each returns the ``Answer``'s text,
    run ids and commands, and ``answer`` adds the intent and the note on a typo'd slug."""

    app: App
    sandbox_id: str
    agents: list[Agent]
    q: Question
    role: Role
    confirmed: bool = False

    async def answer(self) -> Answer:
        q = self.q
        handlers: dict[str, Callable[[], Awaitable[Answer]]] = {
            "destructive": self.destructive,
            "resume_trigger": lambda: self.set_triggers("active"),
            "pause_trigger": lambda: self.set_triggers("paused"),
            "explain_run": lambda: self.explain_run(q.run_ids[0]),
            "explain_event": lambda: self.explain_event(q.event_ids[0]),
            "explain_last": lambda: self._for_agent(self.explain_last),
            "why_not_fired": self.why_not_fired,
            "test_fire": lambda: self._for_agent(self.test_fire),
            "agent_tools": lambda: self._for_agent(self.catalog),
            "usage": self.usage,
            "agent_status": lambda: self._for_agent(self.agent_status),
            "problems": self.problems,
            "doctor": self.doctor,
            "list_runs": self.list_runs,
            "help": self.help,
        }
        answer = await handlers[q.intent]()
        # The agent's latest run is explained like any run: the answer is an explain_run.
        intent = "explain_run" if q.intent == "explain_last" else q.intent
        note = f"(I took {q.typo!r} to mean the agent {q.agent}.)\n" if q.typo and q.agent else ""
        return dataclasses.replace(answer, text=note + answer.text, intent=intent)

    # -- helpers --

    def _unknown_agent(self) -> Answer:
        return Answer(
            f"There is no agent {self.q.unknown_agent!r} in sandbox {self.sandbox_id!r}. "
            f"{self._agents_line()}",
            commands=["cairn agent list"],
        )

    def _agent_or_ask(self) -> str | Answer:
        """The agent the question is about, or an answer asking which one."""
        if self.q.agent:
            return self.q.agent
        if self.q.unknown_agent:
            return self._unknown_agent()
        pool = self._regular_agents()
        if len(pool) == 1:
            return pool[0].slug
        return Answer(
            f"Which agent do you mean? {self._agents_line()}",
            commands=["cairn agent list"],
        )

    async def _for_agent(self, handler: Callable[[str], Awaitable[Answer]]) -> Answer:
        """``handler``'s answer about the agent the question names, or one asking which."""
        slug = self._agent_or_ask()
        return slug if isinstance(slug, Answer) else await handler(slug)

    def _regular_agents(self) -> list[Agent]:
        """Active agents that are not a Concierge (what "my agent" usually means)."""
        from cairn.domain.sources import uses_cairn_tools

        return [
            a for a in self.agents if a.status == "active" and not uses_cairn_tools(a.tool_sources)
        ]

    def _agents_line(self) -> str:
        if not self.agents:
            return "This sandbox has no agents yet: create one with `cairn agent create`."
        return "Agents here: " + ", ".join(a.slug for a in self.agents) + "."

    # -- handlers --

    async def list_runs(self) -> Answer:
        from cairn.services.runs import RunQuery, list_runs

        q = self.q
        if q.unknown_agent and not q.agent:
            return self._unknown_agent()
        from cairn.ids import id_floor

        limit = q.limit or 20
        runs = list_runs(
            self.app,
            self.sandbox_id,
            RunQuery(
                agent_slug=q.agent,
                status=q.status,  # type: ignore[arg-type]
                since_s=q.since_s,
                before=id_floor("run", q.until.timestamp()) if q.until else None,
                limit=limit,
            ),
        )
        whose = f" of {q.agent}" if q.agent else " in this sandbox"
        which = f" {q.status}" if q.status else ""
        window = f" {q.window}" if q.window else ""
        commands = []
        if q.agent:
            status = f" --status {q.status}" if q.status else ""
            commands.append(f"cairn agent runs {q.agent} --limit {limit}{status}")
        if not runs:
            return Answer(f"No{which} runs{whose}{window}.", commands=commands)
        lines = [f"The last {len(runs)}{which} runs{whose}{window}, newest first:"]
        lines += [_run_line(run) for run in runs]
        lines.append(_tally(runs))
        if len(runs) == limit:
            lines.append(f'(Limited to {limit}; ask for more, e.g. "the last {limit * 2} runs".)')
        return Answer(
            "\n".join(lines),
            run_ids=[run.run_id for run in runs],
            commands=commands,
        )

    async def explain_run(self, run_id: str) -> Answer:
        from cairn.services.diagnosis import explain_run

        try:
            explanation = explain_run(self.app, self.sandbox_id, run_id)
        except NotFound:
            return Answer(
                f"There is no run {run_id} in sandbox {self.sandbox_id!r}. Run ids look like "
                "run_ and 26 letters and digits; list recent ones with "
                '"show me the last 20 runs for <agent>".',
                commands=["cairn agent runs <slug>"],
            )
        lines, commands, cited = _phrase(explanation)
        return Answer(
            "\n".join(lines),
            run_ids=unique([explanation.subject, *cited]),
            commands=unique([*commands, f"cairn runs explain {explanation.subject}"]),
        )

    async def explain_last(self, slug: str) -> Answer:
        from cairn.services.runs import RunQuery, list_runs

        latest = list_runs(self.app, self.sandbox_id, RunQuery(agent_slug=slug, limit=1))
        if not latest:
            return Answer(
                f"{slug} has no runs yet. Test it with "
                f"`cairn agent test {slug} --event-payload '{{}}'`.",
                commands=[f"cairn agent test {slug} --event-payload '{{}}'"],
            )
        return await self.explain_run(latest[0].run_id)

    async def explain_event(self, event_id: str) -> Answer:
        from cairn.services.diagnosis import explain_event

        try:
            explanation = explain_event(self.app, self.sandbox_id, event_id)
        except NotFound as missing:
            return Answer(f"{missing} (see `cairn events list`).")
        lines, commands, cited = _phrase(explanation)
        return Answer(
            "\n".join([f"Event {event_id}:", *lines]),
            run_ids=cited,
            commands=unique([*commands, f"cairn events explain {event_id}"]),
        )

    async def why_not_fired(self) -> Answer:
        from cairn.services.diagnosis import why_not_fired
        from cairn.services.triggers import get_trigger

        slug: str | Answer | None = None
        if not self.q.agent and self.q.trigger_ids:
            try:  # a trigger named: its agent
                slug = get_trigger(self.app, self.sandbox_id, self.q.trigger_ids[0]).agent_slug
            except NotFound:
                slug = None
        if not slug:
            slug = self._agent_or_ask()
        if isinstance(slug, Answer):
            return slug
        explanation = why_not_fired(self.app, self.sandbox_id, slug)
        lines, commands, cited = _phrase(explanation)
        events = unique(EVENT_ID.findall(json.dumps(explanation.to_dict(), default=str)))
        return Answer(
            "\n".join([f"Why {slug} did not fire:", *lines]),
            run_ids=cited,
            commands=unique([*commands, *(f"cairn events explain {e}" for e in events[:1])]),
        )

    async def test_fire(self, slug: str) -> Answer:
        from cairn.services.runs import fire_agent

        payload = self.q.payload if self.q.has_payload else {}
        if not self.confirmed:
            unconfirmed = await self._confirm_fire(slug, payload)
            if unconfirmed is not None:
                return unconfirmed
        run = await fire_agent(self.app, self.sandbox_id, slug, payload, kind="test")
        shown = json.dumps(payload, ensure_ascii=False, sort_keys=True)
        duration = f"{run.duration_ms:.0f} ms" if run.duration_ms is not None else "-"
        lines = [
            f"Test-fired {slug} with {shown}: run {run.run_id} {run.status}, outcome "
            f"{run.outcome} ({plural(len(run.tool_calls), 'tool call')}, "
            f"{run.usage.tokens_in + run.usage.tokens_out} tokens, {duration}).",
            f"Output: {run.output_text.strip() or '(empty)'}",
        ]
        for call in run.tool_calls:
            result = f"error: {call.error}" if call.error else f"-> {clip(call.result, 100)}"
            lines.append(f"- {call.name}({clip(call.arguments, 100)}) {result}")
        if run.error_message:
            lines.append(f"Error ({run.error_type}): {run.error_message}")
        cited = [run.run_id]
        commands = [f"cairn runs show {run.run_id}"]
        if run.status != "succeeded" or run.outcome in (*QUIET_OUTCOMES, "tool_errors"):
            from cairn.services.diagnosis import explain_run

            explanation = explain_run(self.app, self.sandbox_id, run.run_id)
            more, fixes, _ = _phrase(explanation)
            lines += ["Why:", *more]
            commands = unique([*commands, *fixes, f"cairn runs explain {run.run_id}"])
        commands.append(f"cairn agent test {slug} --event-payload {shlex.quote(shown)}")
        return Answer("\n".join(lines), run_ids=cited, commands=commands)

    async def _confirm_fire(self, slug: str, payload: Any) -> Answer | None:
        """What a test fire would run, and a request to confirm, when the agent may call
        tools that act on the world; ``None`` when all it can call only reads."""
        from cairn.services.agents import agent_catalog

        catalog = await agent_catalog(self.app, self.sandbox_id, slug)
        acting = [t["name"] for t in catalog.tools if t["name"] not in READ_ONLY_TOOLS]
        if not acting:
            return None
        shown = json.dumps(payload, ensure_ascii=False, sort_keys=True)
        again = f"cairn ask --yes {shlex.quote(self.q.question)}"
        test = f"cairn agent test {slug} --event-payload {shlex.quote(shown)}"
        return Answer(
            f"This would test-fire {slug} ({catalog.agent.model_settings.backend}:"
            f"{catalog.agent.model_settings.model}) with {shown}. It may call "
            f"{plural(len(acting), 'tool')} that can act on the world (not known to be "
            f"read-only): {', '.join(acting)}. Nothing was run. To go ahead, confirm: "
            f"`{again}` (or `{test}`).",
            commands=[again, test],
        )

    async def catalog(self, slug: str) -> Answer:
        from cairn.services.agents import agent_catalog, describe_missing

        catalog = await agent_catalog(self.app, self.sandbox_id, slug)
        trace = catalog.trace
        names = [tool["name"] for tool in catalog.tools]
        if names:
            lines = [f"{slug} can use {plural(len(names), 'tool')} right now: {', '.join(names)}."]
        else:
            lines = [f"{slug} has no tools right now, so its runs cannot act."]
        if trace.sources_resolved:
            lines.append(
                "Sources that resolved: "
                + "; ".join(
                    f"{s.label} ({s.kind}, {plural(s.tool_count, 'tool')})"
                    for s in trace.sources_resolved
                )
                + "."
            )
        elif catalog.agent.tool_sources == []:
            lines.append("Its tool sources are [] (tool-less by choice).")
        for skipped in trace.sources_skipped:
            lines.append(
                f"Skipped: {skipped.label} ({skipped.kind}): {skipped.reason}: {skipped.message}"
            )
        if trace.allowlist_filtered_out:
            lines.append(
                f"Filtered out by its allowlist: {', '.join(trace.allowlist_filtered_out)}."
            )
        for missing in trace.allowlist_missing_entries:
            lines.append(f"Stale: {describe_missing(missing)}.")
        return Answer("\n".join(lines), commands=[f"cairn agent tools {slug}"])

    async def usage(self) -> Answer:
        from cairn.services.usage import format_micros, usage

        q = self.q
        by = q.usage_by
        since_s, window = q.since_s or 86400.0, q.window or "in the last 24 hours"
        until = q.until.timestamp() if q.until else None
        if until is not None:  # a closed window ("yesterday"): from its start to its end
            since_s = until - (time.time() - since_s)
        report = usage(
            self.app, self.sandbox_id, since_s=since_s, by=by, agent=q.agent, until=until
        )
        rows = [row for row in report.rows if row.runs] if by == "hour" else report.rows
        if by == "hour":
            rows = sorted(rows, key=lambda r: -r.tokens)
        scope = f" by {q.agent}" if q.agent else ""
        commands = [f"cairn usage --since {_duration(since_s)} --by {by}"]
        if not rows:
            return Answer(f"No runs{scope} {window}: no tokens were used.", commands=commands)

        def cost(micros: int | None) -> str:
            return f", est. cost {format_micros(micros)}" if micros is not None else ""

        top = rows[0]
        key = top.key if top.key is not None else f"(no {by})"
        lines = [
            f"{capitalised(window)}, the {by} that used the most tokens{scope} is "
            f"{key}: {top.tokens:,} tokens ({top.tokens_in:,} in, {top.tokens_out:,} out) "
            f"over {plural(top.runs, 'run')}{cost(top.cost_micros)}."
        ]
        for row in rows[1:5]:
            name = row.key if row.key is not None else f"(no {by})"
            lines.append(
                f"- {name}: {row.tokens:,} tokens over {plural(row.runs, 'run')}"
                f"{cost(row.cost_micros)}"
            )
        totals = report.totals
        lines.append(
            f"Total: {totals.tokens:,} tokens over {plural(totals.runs, 'run')}"
            f"{cost(totals.cost_micros)}."
        )
        return Answer("\n".join(lines), commands=commands)

    async def agent_status(self, slug: str) -> Answer:
        """What Cairn knows about one agent: doctor's findings, its latest run explained,
        and why its triggers did (not) fire: the answer to "is X ok?", "why is X doing
        nothing?", "why did X fail?" and to anything unclear that names X."""
        from cairn.services.diagnosis import doctor, explain_run, why_not_fired
        from cairn.services.runs import RunQuery, list_runs
        from cairn.services.triggers import list_triggers

        report = await doctor(self.app, self.sandbox_id, slug=slug)
        latest = list_runs(self.app, self.sandbox_id, RunQuery(agent_slug=slug, limit=1))
        triggers = list_triggers(self.app, self.sandbox_id, slug)
        problems = [f for f in report.findings if f.needs_fixing]
        if problems:
            head = f"{slug} needs attention: {plural(len(problems), 'problem')} found."
        elif latest and latest[0].status in ("failed", "cancelled"):
            head = f"{slug}'s latest run did not succeed."
        else:
            head = f"{slug} looks healthy: doctor finds nothing to fix."
        lines, commands = _findings([head], report.findings, subjects=False)
        cited: list[str] = []
        if latest:
            run = latest[0]
            more, fixes, runs = _phrase(explain_run(self.app, self.sandbox_id, run.run_id))
            lines += ["Its latest run:", *more]
            commands += fixes
            cited += [run.run_id, *runs]
        else:
            lines.append(f"It has no runs yet: `cairn agent test {slug} --event-payload '{{}}'`.")
        if triggers:
            explanation = why_not_fired(self.app, self.sandbox_id, slug)
            more, fixes, runs = _phrase(explanation)
            lines += ["Its triggers:", *more]
            commands += fixes
            cited += runs
        elif self.q.intent == "agent_status" and re.search(r"nothing|never|not", self.q.text):
            lines.append(
                f"It has no trigger, so nothing fires it: `cairn agent trigger create {slug} "
                "--source <source>`."
            )
        text = "\n".join(lines)
        return Answer(
            text,
            run_ids=unique([*cited, *cited_run_ids(text)]),
            commands=unique([*commands, f"cairn doctor --agent {slug}"]),
        )

    async def problems(self) -> Answer:
        """What went wrong in the window, grouped by agent (``concierge.problems``)."""
        from cairn.services.concierge.problems import problems_in_window

        q = self.q
        since_s, window = q.since_s or 86400.0, q.window or "in the last 24 hours"
        found = problems_in_window(
            self.app, self.sandbox_id, since_s=since_s, until=q.until, agent=q.agent
        )
        lines = found.lines(window)
        return Answer(
            "\n".join(lines),
            run_ids=found.run_ids(),
            commands=found.commands(),
        )

    async def doctor(self) -> Answer:
        from cairn.services.diagnosis import doctor

        report = await doctor(self.app, self.sandbox_id, slug=self.q.agent)
        command = "cairn doctor" + (f" --agent {self.q.agent}" if self.q.agent else "")
        if report.ok and not report.findings:
            return Answer("Nothing needs fixing.", commands=[command])
        head = "Nothing needs fixing; notes:" if report.ok else "These need fixing:"
        lines, commands = _findings([head], report.findings, subjects=True)
        text = "\n".join(lines)
        return Answer(
            text,
            run_ids=cited_run_ids(text),
            commands=unique([*commands, command]),
        )

    async def set_triggers(self, status: TriggerStatus) -> Answer:
        from cairn.services.triggers import get_trigger, list_triggers, update_trigger

        verb, undo = ("pause", "resume") if status == "paused" else ("resume", "pause")
        ids = self.q.trigger_ids
        if not ids and self.q.agent:
            ids = [t.trigger_id for t in list_triggers(self.app, self.sandbox_id, self.q.agent)]
        if not ids and self.q.agent:
            return Answer(
                f"{self.q.agent} has no trigger, so nothing fires it by itself: there is "
                f"nothing to {verb}. (Runs you start yourself are not stopped by this.)",
                commands=[f"cairn agent trigger list {self.q.agent}"],
            )
        if not ids:
            return Answer(
                "Which trigger? Name it (trg_…) or its agent; `cairn agent trigger list` "
                "shows them.",
                commands=["cairn agent trigger list"],
            )
        if not role_allows(self.role, "editor"):
            commands = [f"cairn agent trigger {verb} {t}" for t in ids]
            return Answer(
                f"To {verb} a trigger takes an editor key, and this question came with a "
                f"{self.role} key. An editor can run: " + "; ".join(commands),
                commands=commands,
            )
        lines: list[str] = []
        commands = []
        for trigger_id in ids:
            try:
                before = get_trigger(self.app, self.sandbox_id, trigger_id)
            except NotFound:
                lines.append(f"There is no trigger {trigger_id} in sandbox {self.sandbox_id!r}.")
                continue
            if before.status == status:
                lines.append(f"Trigger {trigger_id} ({before.agent_slug}) was already {status}.")
                continue
            update_trigger(self.app, self.sandbox_id, trigger_id, status=status)
            if status == "paused":
                lines.append(
                    f"Paused trigger {trigger_id} ({before.agent_slug} <- source "
                    f"{before.data_source_id}): it no longer fires, and its events are recorded "
                    f"as 'paused'. Undo with `cairn agent trigger resume {trigger_id}`."
                )
            else:
                lines.append(
                    f"Resumed trigger {trigger_id} ({before.agent_slug}): it fires again on "
                    f"matching events. Undo with `cairn agent trigger pause {trigger_id}`."
                )
            commands.append(f"cairn agent trigger {undo} {trigger_id}")
        return Answer("\n".join(lines), commands=commands)

    async def destructive(self) -> Answer:
        """Never done: what would be destroyed, and the command that does it."""
        from cairn.services.sources import list_sources
        from cairn.services.triggers import list_triggers

        q = self.q
        triggers = q.trigger_ids
        if not triggers and q.agent and re.search(r"\btriggers?\b", q.text):
            triggers = [t.trigger_id for t in list_triggers(self.app, self.sandbox_id, q.agent)]
        sources = q.source_ids or [
            s.label
            for s in list_sources(self.app, self.sandbox_id)
            if s.kind != "builtin"
            and re.search(rf"(?<![\w-]){re.escape(s.label.lower())}(?![\w-])", q.text)
        ]
        commands = [f"cairn agent trigger destroy {t} --yes" for t in triggers]
        commands += [f"cairn source revoke {shlex.quote(s)}" for s in sources]
        commands += [f"cairn key revoke {k}" for k in q.key_ids]
        if q.run_ids or (re.search(r"\bruns?\b", q.text) and not commands):
            commands.append("cairn runs prune --older-than 30d")
        if q.agent and not commands:
            commands.append(f"cairn agent archive {q.agent}")
        if not commands:
            commands = [
                "cairn agent trigger destroy <trigger_id> --yes",
                "cairn source revoke <source>",
                "cairn connection revoke <app>",
                "cairn key revoke <key_id>",
                "cairn runs prune --older-than <age>",
            ]
        lines = [
            "I never destroy anything: that stays a decision you make yourself. To do it, run:",
            *(f"  {command}" for command in commands),
        ]
        if any(c.startswith("cairn runs prune") for c in commands):
            lines.append(
                "Runs are the audit trail: they are deleted only by age, with `runs prune`."
            )
        if any(c.startswith("cairn agent archive") for c in commands):
            lines.append(
                "Agents are not deleted; archiving stops every trigger from firing them "
                "(`cairn agent unarchive` undoes it)."
            )
        if triggers:
            lines.append(
                "If you only want it to stop firing, ask me to pause it instead: that is "
                "reversible."
            )
        return Answer("\n".join(lines), commands=commands)

    async def help(self) -> Answer:
        examples = [
            "Show me the last 20 runs for the <agent> agent",
            "Why didn't run run_… use any tools?",
            'Test the <agent> agent with this fake event: {"title": "broken checkout"}',
            "What tools does my <agent> agent have right now?",
            "Why didn't the <agent> agent fire on the last event?",
            "Which agent used the most tokens today?",
            "Pause trigger trg_…  (and: resume trigger trg_…)",
            "What needs fixing?",
        ]
        return Answer(
            "I did not understand that question. I answer from the ledger, e.g.:\n"
            + "\n".join(f"- {e}" for e in examples)
            + f"\nI never destroy anything; I print the command instead. {self._agents_line()}",
        )


# --- phrasing -------------------------------------------------------------------------


def _findings(
    lines: list[str], findings: list[Finding], *, subjects: bool
) -> tuple[list[str], list[str]]:
    """``lines`` and a line per finding (``[severity] subject: cause``, then its fix), and
    the commands its fixes quote."""
    commands: list[str] = []
    for finding in findings:
        about = f"{finding.subject}: " if subjects and finding.subject else ""
        lines.append(f"- [{finding.severity}] {about}{finding.cause}")
        if finding.fix:
            lines.append(f"  Fix: {finding.fix}")
            commands += commands_in(finding.fix)
    return lines, commands


def _phrase(explanation: Explanation) -> tuple[list[str], list[str], list[str]]:
    """An explanation as lines of text, the commands in its fixes, the run ids it cites."""
    lines = [explanation.summary]
    commands: list[str] = []
    for finding in explanation.findings:
        # The summary usually is the root cause's sentence: say it once.
        if finding.cause not in explanation.summary:
            lines.append(f"- {finding.cause}")
        if finding.fix:
            lines.append(f"  Fix: {finding.fix}")
            commands += commands_in(finding.fix)
        if finding.evidence:
            lines.append(f"  (from the fields {', '.join(sorted(finding.evidence))})")
    cited = cited_run_ids(json.dumps(explanation.to_dict(), default=str))
    return lines, unique(commands), cited


def _run_line(run: Run) -> str:
    tokens = run.usage.tokens_in + run.usage.tokens_out
    when = run.created_at.strftime("%Y-%m-%d %H:%M:%S") if run.created_at else "-"
    line = (
        f"- {run.run_id}  {run.agent_slug}  {run.status}  {run.outcome or '-'}  "
        f"{plural(len(run.tool_calls), 'tool call')}, {tokens} tokens, {when}"
    )
    if run.error_message:
        line += f"\n    error: {clip(run.error_message, 160)}"
    elif run.output_text.strip():
        line += f"\n    output: {clip(run.output_text, 160)}"
    return line


def _tally(runs: list[Run]) -> str:
    statuses = Counter(run.status for run in runs)
    quiet = sum(run.outcome in NO_OP_OUTCOMES for run in runs)
    parts = ", ".join(f"{count} {status}" for status, count in statuses.items())
    tail = f"; {plural(quiet, 'run')} called no tool" if quiet else ""
    return f"In all: {parts}{tail}."


def _duration(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds >= 3600:
        return f"{max(1, round(seconds / 3600))}h"
    return f"{max(1, round(seconds / 60))}m"
