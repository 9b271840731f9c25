"""What the pages show, shaped from the operations' JSON: pure functions, no I/O.

The templates stay dumb: the timeline (model turns, tool calls paired with their results,
durations), the trace's verdict (is this the silent no-op, and why) and the usage chart's
geometry are computed here, where tests can pin them without a browser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from markupsafe import Markup, escape

from cairn.domain.runs import LIVE_STATUSES
from cairn.domain.usage import format_micros
from cairn.text import plural

OUTCOME_MEANINGS: dict[str, str] = {
    "acted": "the agent called one or more tools, and every call returned a result",
    "tool_errors": "the agent called tools and at least one call errored (or was not advertised)",
    "answered": "tools were advertised; the model replied with text only",
    "model_chose_no_tool": "tools were advertised; the model made no call and said nothing",
    "no_tools_available": (
        "no tool was advertised to the model (no sources, all skipped, or all filtered)"
    ),
    "interrupted": "the run failed or was cancelled before it called any tool",
}
"""Each outcome as a clause that reads on its own (the table of ``cairn.domain.runs``):
the templates print it after a colon or capitalised, never after "the agent"."""

SKIP_MEANINGS: dict[str, str] = {
    "oauth_missing": "the integration has no OAuth connection",
    "oauth_expired": "the connection's token expired or was revoked upstream",
    "unreachable": "the server could not be reached or started",
    "auth_refused": "the server answered 401/403: missing or wrong credentials",
    "timeout": "the source did not list its tools in time",
    "disabled": "the source was revoked or is switched off",
    "not_found": "the agent names a source that does not exist",
    "error": "the source raised an error while listing its tools",
}
"""Each skip reason in a sentence (the table of ``cairn.domain.trace``)."""

QUIET_OUTCOMES = frozenset({"model_chose_no_tool", "no_tools_available"})
"""Outcomes of a run that finished without doing anything: the silent no-op."""

WINDOWS: tuple[tuple[str, str], ...] = (
    ("", "any time"),
    ("15m", "last 15 minutes"),
    ("1h", "last hour"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
)
"""The runs page's time windows: (``since`` value, label)."""


# --- formatting ----------------------------------------------------------------------------


def parse_time(value: str | datetime | None) -> datetime | None:
    """An ISO timestamp (as the wire shapes carry them) as an aware datetime."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def fmt_when(value: str | datetime | None) -> str:
    """``2025-01-31 14:05:09`` in UTC, or an em dash."""
    moment = parse_time(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def fmt_duration(ms: float | None) -> str:
    """``0.42 ms``, ``12 ms``, ``1.25 s``, ``3 min 05 s``."""
    if ms is None:
        return "—"
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(int(ms // 1000), 60)
    return f"{minutes} min {seconds:02d} s"


def fmt_span(seconds: float) -> str:
    """``hour``, ``6 hours``, ``day``, ``2 days`` (a chart's bar width)."""
    hours = round(seconds / 3600)
    if hours % 24 == 0 and hours >= 24:
        return "day" if hours == 24 else f"{hours // 24} days"
    return "hour" if hours <= 1 else f"{hours} hours"


def fmt_count(value: int | float | None) -> str:
    """``12,345``."""
    return "—" if value is None else f"{int(value):,}"


def fmt_cost(micros: int | None) -> str:
    """An estimated cost in USD from micro-units; unknown (unpriced) is not zero."""
    if micros is None:
        return "unpriced"
    return "<$0.0001" if 0 < micros < 50 else "$" + format_micros(micros)


def pretty(value: Any, limit: int = 20_000) -> str:
    """JSON for people (indented, unicode kept), cut at ``limit`` characters."""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)
    if len(text) > limit:
        return f"{text[:limit]}\n… ({len(text) - limit:,} more characters)"
    return text


def compact(value: Any, limit: int = 120) -> str:
    """JSON on one line, cut at ``limit`` characters (for table cells)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def sentence(text: str) -> str:
    """``text`` with its first letter capitalised (the rest left alone: ``run_id``s stay)."""
    return text[:1].upper() + text[1:]


_BACKTICKS = re.compile(r"`([^`]+)`")


def inline_code(text: str | None) -> Markup:
    """Diagnosis prose for HTML: escaped, with its `backticked` spans as ``<code>``
    (the texts are written for terminals, where backticks read as code); CLI commands get
    a copy button from the page's script."""
    if not text:
        return Markup("")
    parts = _BACKTICKS.split(text)
    out = [
        (
            Markup('<code class="copyable">{}</code>')
            if part.startswith("cairn ")
            else Markup("<code>{}</code>")
        ).format(part)
        if index % 2
        else escape(part)
        for index, part in enumerate(parts)
    ]
    return Markup("").join(out)


def fmt_ago(value: str | datetime | None, now: datetime | None = None) -> str:
    """``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago`` (the absolute time goes in a
    ``title``)."""
    moment = parse_time(value)
    if moment is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 5:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def fmt_short(value: float | None) -> str:
    """``950``, ``12.3k``, ``4.5M``: an axis label that fits its margin."""
    if value is None:
        return "—"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            scaled = value / size
            return (
                f"{scaled:.0f}{suffix}"
                if scaled >= 100
                else f"{scaled:.1f}".rstrip("0").rstrip(".") + suffix
            )
    return f"{value:.0f}"


def run_cost(run: dict[str, Any]) -> str:
    """A run's estimated cost: pending while it runs, ``$0`` for a run that used no tokens,
    ``unpriced`` only when tokens were used and the model has no price."""
    if run.get("status") in LIVE_STATUSES and run.get("cost_micros") is None:
        return "pending"
    if run.get("cost_micros") is None and not (run.get("tokens_in") or run.get("tokens_out")):
        return fmt_cost(0)
    return fmt_cost(run.get("cost_micros"))


def total_cost(row: dict[str, Any]) -> str:
    """A usage row's estimated cost: ``—`` with no runs (nothing to price), ``unpriced``
    only when runs used a model with no price."""
    if not row.get("runs"):
        return "—"
    return fmt_cost(row.get("cost_micros"))


# --- signals in the lists --------------------------------------------------------------------

Health = Literal["ok", "partial", "bad", "live", "quiet"]


@dataclass(frozen=True, slots=True)
class Signal:
    """What a runs-list row says at a glance: its health and a one-line reason."""

    health: Health
    note: str


def run_signal(run: dict[str, Any]) -> Signal:
    """``partial`` when a run succeeded but something it asked for was missing (a skipped
    source, a stale allowlist entry, a failed tool call), so a degraded run never looks as
    green as a clean one; ``bad`` with the error's first line for failures."""
    status = run.get("status")
    if status in LIVE_STATUSES:
        return Signal("live", "")
    if status == "failed":
        return Signal("bad", (run.get("error_message") or "failed").splitlines()[0][:140])
    if status == "cancelled":
        return Signal("quiet", (run.get("error_message") or "cancelled")[:140])
    if run.get("outcome") in QUIET_OUTCOMES:
        return Signal("quiet", OUTCOME_MEANINGS[run["outcome"]])
    trace = run.get("tool_resolution_trace") or {}
    reasons: list[str] = []
    for skipped in trace.get("sources_skipped") or []:
        label = skipped.get("label") or skipped.get("source_id")
        reasons.append(f"source {label} skipped ({skipped.get('reason')})")
    missing = [m.get("entry") for m in trace.get("allowlist_missing_entries") or []]
    if missing:
        reasons.append("stale allowlist entry " + ", ".join(str(m) for m in missing))
    failed = [c.get("name") for c in run.get("tool_calls") or [] if c.get("error")]
    if failed:
        reasons.append("tool call failed: " + ", ".join(str(n) for n in failed))
    if reasons:
        return Signal("partial", "; ".join(reasons))
    return Signal("ok", "")


def health_counts(runs: list[dict[str, Any]]) -> dict[str, int]:
    """How many of ``runs`` ended each way (an agent's recent health)."""
    counts = {"ok": 0, "partial": 0, "quiet": 0, "bad": 0, "live": 0}
    for run in runs:
        counts[run_signal(run).health] += 1
    return counts


def decision_reason(decision: str, detail: dict[str, Any] | None) -> str:
    """A trigger decision's detail as a phrase: ``channel missing, wanted 'C123'``."""
    detail = detail or {}
    if decision == "filtered_out" and detail.get("filter") == "event_type_filter":
        return f"event type {detail.get('actual')!r}, wanted {detail.get('expected')!r}"
    if decision == "filtered_out" and "field" in detail:
        field_name, wanted = detail["field"], json.dumps(detail.get("expected"))
        if detail.get("missing"):
            return f"{field_name} missing, wanted {wanted}"
        return f"{field_name} was {json.dumps(detail.get('actual'))}, wanted {wanted}"
    if decision == "paused":
        return "the trigger is paused"
    if decision == "agent_archived":
        return f"agent {detail.get('agent', '')} is archived".replace("  ", " ")
    if decision == "rate_limited":
        count = detail.get("fires_in_window")
        return "over its hourly rate limit" + (f" ({count} fires this hour)" if count else "")
    if decision == "busy":
        return "the server's run queue was full"
    return compact(detail, 160) if detail else ""


# --- the timeline --------------------------------------------------------------------------

StepKind = Literal["resolve", "turn", "tool", "retry", "finish", "error", "cancelled"]


@dataclass(slots=True)
class Step:
    """One entry of a run's timeline: a model turn's text, a tool call with its result, a
    retry, or the end. ``offset_ms`` is since the run started."""

    kind: StepKind
    seq: int
    offset_ms: float | None = None
    duration_ms: float | None = None
    turn: int | None = None
    text: str = ""
    name: str = ""
    call_id: str = ""
    arguments: Any = None
    result: Any = None
    error: str | None = None
    pending: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


def _ms_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds() * 1000, 0.0)


def build_timeline(run: dict[str, Any], events: list[dict[str, Any]]) -> list[Step]:
    """The run's events as steps: text deltas of a turn joined into one model turn (its
    duration runs from the previous step's end), each tool call paired with its result (its
    duration is the one the runner measured)."""
    start = parse_time(run.get("started_at")) or parse_time(run.get("created_at"))
    measured = {call["call_id"]: call for call in run.get("tool_calls") or []}
    steps: list[Step] = []
    calls: dict[str, Step] = {}
    previous_end = start
    trace = run.get("tool_resolution_trace") or {}
    if trace.get("duration_ms") is not None:
        # Resolution comes before the first model turn and has no event of its own: give it
        # a step, so the first turn's duration is the model's alone.
        resolved = float(trace["duration_ms"])
        advertised = len(trace.get("tool_names_advertised") or [])
        steps.append(Step("resolve", 0, 0.0, resolved, detail={"advertised": advertised}))
        if start is not None:
            previous_end = start + timedelta(milliseconds=resolved)
    for event in events:
        data = event.get("data") or {}
        kind = event["kind"]
        at = parse_time(event.get("created_at"))
        offset = _ms_between(start, at)
        last = steps[-1] if steps else None
        if kind == "text":
            turn = data.get("turn")
            if last is not None and last.kind == "turn" and last.turn == turn:
                last.text += str(data.get("delta", ""))
                last.duration_ms = _ms_between(last.detail.get("began"), at)
            else:
                step = Step(
                    "turn", event["seq"], offset, turn=turn, text=str(data.get("delta", ""))
                )
                step.detail["began"] = previous_end
                step.detail["began_ms"] = _ms_between(start, previous_end)
                step.duration_ms = _ms_between(previous_end, at)
                steps.append(step)
        elif kind == "tool_call":
            step = Step(
                "tool",
                event["seq"],
                offset,
                name=str(data.get("name", "")),
                call_id=str(data.get("call_id", "")),
                arguments=data.get("arguments"),
                pending=True,
            )
            step.detail["began"] = at
            calls[step.call_id] = step
            steps.append(step)
        elif kind == "tool_result":
            step = calls.get(str(data.get("call_id", ""))) or Step(
                "tool", event["seq"], offset, name=str(data.get("name", "")), call_id=""
            )
            if step not in steps:
                steps.append(step)
            step.result = data.get("result")
            step.error = data.get("error")
            step.pending = False
            known = measured.get(step.call_id)
            if known and known.get("duration_ms") is not None:
                step.duration_ms = float(known["duration_ms"])
            else:
                step.duration_ms = _ms_between(step.detail.get("began"), at)
        elif kind == "error" and data.get("error_type") == "cancelled":
            steps.append(Step("cancelled", event["seq"], offset, detail=dict(data)))
        elif kind == "retry" or kind == "finish" or kind == "error":
            steps.append(Step(kind, event["seq"], offset, detail=dict(data)))
        previous_end = at or previous_end
    for step in steps:
        step.detail.pop("began", None)
    return steps


@dataclass(frozen=True, slots=True)
class WaterfallBar:
    """One bar of the run's waterfall: where it starts and how long it lasts, as
    percentages of the run's span (SVG attributes; the page's CSP forbids inline styles)."""

    kind: str
    label: str
    start_ms: float
    duration_ms: float
    left_pct: float
    width_pct: float
    failed: bool = False
    pending: bool = False
    note: str = ""


def waterfall(run: dict[str, Any], steps: list[Step]) -> list[WaterfallBar]:
    """Resolution, each model turn and each tool call on one time axis (the steps that
    have a duration; retries and the end are points and stay in the timeline)."""
    timed = [s for s in steps if s.kind in ("resolve", "turn", "tool") and s.offset_ms is not None]
    if not timed:
        return []
    ends = [
        float(s.detail.get("began_ms") or s.offset_ms or 0.0) + (s.duration_ms or 0.0)
        for s in timed
    ]
    span = max([float(run.get("duration_ms") or 0.0), *ends, 1.0])
    bars: list[WaterfallBar] = []
    for step in timed:
        duration = step.duration_ms or 0.0
        # A turn began when the step before it ended (its first delta comes later).
        began = step.detail.get("began_ms") if step.kind == "turn" else None
        start = float(began) if began is not None else step.offset_ms or 0.0
        if step.kind == "resolve":
            label = "Tool resolution"
            note = f"{step.detail.get('advertised', 0)} tools advertised"
        elif step.kind == "turn":
            label = f"Model turn {(step.turn or 0) + 1}"
            note = compact(step.text, 60) if step.text else ""
        else:
            label = step.name
            note = "error" if step.error else ("running" if step.pending else "")
        bars.append(
            WaterfallBar(
                kind=step.kind,
                label=label,
                start_ms=start,
                duration_ms=duration,
                left_pct=round(100 * start / span, 2),
                width_pct=round(max(100 * duration / span, 0.4), 2),
                failed=bool(step.error),
                pending=step.pending,
                note=note,
            )
        )
    return bars


# --- the tool-resolution trace ---------------------------------------------------------------

Verdict = Literal["ok", "warn", "bad"]


@dataclass(frozen=True, slots=True)
class SourceLine:
    """A source of the trace, built or skipped."""

    label: str
    kind: str
    source_id: str
    skipped: bool
    tool_count: int | None = None
    duration_ms: float | None = None
    reason: str | None = None
    reason_meaning: str = ""
    message: str = ""
    hidden_by_source: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TraceView:
    """The trace laid out for people: a verdict, then the sources, the allowlist's effect
    and what the model was shown."""

    present: bool
    verdict: Verdict
    headline: str
    notes: list[str] = field(default_factory=list)
    sources: list[SourceLine] = field(default_factory=list)
    advertised: list[str] = field(default_factory=list)
    filtered_out: list[str] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    duration_ms: float | None = None


def trace_view(trace: dict[str, Any] | None, *, live: bool = False) -> TraceView:
    """Lay out ``trace`` so the silent no-op is obvious: ``bad`` when the model was shown no
    tool at all, ``warn`` when a source was skipped or an allowlist entry is stale."""
    if not trace:
        if live:
            return TraceView(
                False,
                "warn",
                "Resolving tools: the trace appears here once the sources have answered.",
            )
        return TraceView(
            False, "warn", "No trace: the run ended before its tools were resolved (see the error)."
        )
    sources = [
        SourceLine(
            label=s.get("label") or s["source_id"],
            kind=s.get("kind", ""),
            source_id=s["source_id"],
            skipped=skipped,
            tool_count=s.get("tool_count"),
            duration_ms=s.get("duration_ms"),
            reason=s.get("reason"),
            reason_meaning=SKIP_MEANINGS.get(s.get("reason") or "", ""),
            message=s.get("message", ""),
            hidden_by_source=tuple(s.get("hidden_by_source") or ()),
        )
        for key, skipped in (("sources_resolved", False), ("sources_skipped", True))
        for s in trace.get(key) or []
    ]
    advertised = list(trace.get("tool_names_advertised") or [])
    filtered = list(trace.get("allowlist_filtered_out") or [])
    missing = list(trace.get("allowlist_missing_entries") or [])
    skipped = [s for s in sources if s.skipped]
    notes: list[str] = []
    if skipped:
        notes.append(
            f"{plural(len(skipped), 'source')} skipped: "
            + "; ".join(f"{s.label} ({s.reason})" for s in skipped)
        )
    if missing:
        verb = "entry matches" if len(missing) == 1 else "entries match"
        notes.append(
            f"{len(missing)} allowlist {verb} no tool: " + ", ".join(m["entry"] for m in missing)
        )
    if filtered and not advertised:
        notes.append(f"the allowlist removed all {plural(len(filtered), 'tool')} the sources gave")
    if not sources:
        notes.append("the agent selects no tool source")
    verdict: Verdict
    if not advertised:
        verdict, headline = "bad", "No tool was advertised to the model: this run could not act."
    elif skipped or missing:
        verdict = "warn"
        headline = (
            f"{plural(len(advertised), 'tool')} advertised, but something the agent asks "
            "for is missing."
        )
    else:
        built = len(sources)
        verdict = "ok"
        headline = f"{plural(len(advertised), 'tool')} advertised from {plural(built, 'source')}."
    return TraceView(
        True,
        verdict,
        headline,
        notes,
        sources,
        advertised,
        filtered,
        missing,
        list(trace.get("name_conflicts") or []),
        trace.get("duration_ms"),
    )


# --- the usage chart -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    """One rectangle of a stacked bar chart (SVG user units), with its tooltip."""

    x: float
    y: float
    width: float
    height: float
    series: int
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A stacked bar chart laid out for inline SVG: bars, axis ticks and a legend."""

    width: int
    height: int
    left: int
    bottom: int
    bars: list[Bar]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    legend: list[tuple[int, str, str]]
    empty: bool
    summary: str


SERIES_COLOURS = 8
"""How many series get a colour of their own (``.s0`` … ``.s7`` in the stylesheet); the
rest of the groups are summed as "others"."""


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = float(10 ** (len(str(int(value))) - 1))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * magnitude:
            return step * magnitude
    return 10.0 * magnitude


def stacked_chart(
    groups: list[tuple[str, list[float]]],
    since: datetime,
    bucket_s: float,
    *,
    unit: str,
    fmt: Any = fmt_count,
    tick_fmt: Any = fmt_short,
    width: int = 960,
    height: int = 260,
) -> Chart:
    """Stack each group's series per bucket (oldest left). Groups beyond the first
    ``SERIES_COLOURS - 1`` are summed into "others" so the legend stays readable."""
    left, bottom, top = 84, 28, 10
    if len(groups) > SERIES_COLOURS:
        head, tail = groups[: SERIES_COLOURS - 1], groups[SERIES_COLOURS - 1 :]
        size = max(len(series) for _, series in tail)
        others = [sum(s[i] for _, s in tail if i < len(s)) for i in range(size)]
        groups = [*head, (f"{len(tail)} others", others)]
    buckets = max((len(series) for _, series in groups), default=0)
    totals = [sum(s[i] for _, s in groups if i < len(s)) for i in range(buckets)]
    peak = _nice_ceiling(max(totals, default=0.0))
    plot_w, plot_h = width - left - 8, height - bottom - top
    slot = plot_w / buckets if buckets else plot_w
    bars: list[Bar] = []
    for index in range(buckets):
        stacked = 0.0
        moment = since + timedelta(seconds=bucket_s * index)
        for series_index, (name, series) in enumerate(groups):
            value = series[index] if index < len(series) else 0
            if value <= 0:
                continue
            h = value / peak * plot_h
            y = top + plot_h - (stacked / peak * plot_h) - h
            stacked += value
            label = f"{name}: {fmt(value)} {unit} at {moment.strftime('%Y-%m-%d %H:%M')} UTC"
            bars.append(
                Bar(left + index * slot + 0.5, y, max(slot - 1.0, 0.5), h, series_index, label)
            )
    step = max(1, buckets // 8)
    x_ticks = [
        (
            left + index * slot + slot / 2,
            (since + timedelta(seconds=bucket_s * index)).strftime(
                "%H:%M" if bucket_s * buckets <= 86400 else "%m-%d %H:%M"
            ),
        )
        for index in range(0, buckets, step)
    ]
    y_ticks = [(top + plot_h - plot_h * f, tick_fmt(peak * f)) for f in (0.0, 0.5, 1.0)]
    legend = [(i, name, fmt(sum(series))) for i, (name, series) in enumerate(groups)]
    total = sum(totals)
    amount = f"{fmt(total)} {unit}".strip()
    biggest = max(groups, key=lambda group: sum(group[1]), default=None)
    largest = (
        f"; largest: {biggest[0]} with {fmt(sum(biggest[1]))}"
        if biggest and len(groups) > 1
        else ""
    )
    summary = f"{amount} over {buckets} bars{largest}" if total else "nothing in this window"
    return Chart(width, height, left, bottom, bars, x_ticks, y_ticks, legend, not total, summary)


MAX_BARS = 96
"""A chart keeps at most this many bars: longer windows sum neighbouring hours."""


def rebucket(series: list[float], factor: int) -> list[float]:
    """Sum every ``factor`` neighbouring points (the last group may be shorter)."""
    if factor <= 1:
        return list(series)
    return [sum(series[i : i + factor]) for i in range(0, len(series), factor)]


def usage_context(by_agent: dict[str, Any], by_hour: dict[str, Any]) -> dict[str, Any]:
    """The usage page from two reports of ``cairn.services.usage`` (their JSON form): tokens
    per agent over time (stacked), estimated cost per hour, the top spenders and totals."""
    since = parse_time(by_agent["since"]) or datetime.now(UTC)
    bucket_s = float(by_agent.get("bucket_s") or 3600.0)
    points = max((len(row["series"]) for row in by_agent["rows"]), default=0)
    factor = max(1, -(-points // MAX_BARS))
    tokens = stacked_chart(
        [(row["key"] or "(none)", rebucket(row["series"], factor)) for row in by_agent["rows"]],
        since,
        bucket_s * factor,
        unit="tokens",
    )
    hourly = [float(row.get("cost_micros") or 0) for row in by_hour["rows"]]
    cost = stacked_chart(
        [("estimated cost", rebucket(hourly, factor))],
        parse_time(by_hour["since"]) or since,
        bucket_s * factor,
        unit="",
        fmt=lambda micros: fmt_cost(int(micros)),
        tick_fmt=lambda micros: (
            "$" + fmt_short(micros / 1_000_000) if micros >= 1_000_000 else fmt_cost(int(micros))
        ),
    )
    spenders = sorted(
        by_agent["rows"],
        key=lambda row: (-(row.get("cost_micros") or 0), -row["tokens"], row["key"] or ""),
    )[:10]
    total = sum(row["tokens"] for row in by_agent["rows"]) or 1
    return {
        "tokens_chart": tokens,
        "cost_chart": cost,
        "spenders": [row | {"share": round(100 * row["tokens"] / total)} for row in spenders],
        "totals": by_agent["totals"],
        "since": by_agent["since"],
        "until": by_agent["until"],
        "bucket_label": fmt_span(bucket_s * factor),
    }
