"""How the Concierge reads a question: ids, the agent it names, a payload, a window, and
what it asks for (its *intent*). Pure and deterministic, so each form is pinned by a test
without a ledger; ``cairn.services.concierge`` answers what this finds.

Intents are tried in this order (the first that fits wins):

==================  ==================================================================
intent              recognised by
==================  ==================================================================
``destructive``     delete / destroy / remove / revoke / prune / wipe / purge / erase
``resume_trigger``  a command (not a question) with resume / unpause + trigger
``pause_trigger``   a command with pause / suspend / disable + trigger
``explain_run``     a run id (``run_…``)
``explain_event``   an event id (``evt_…``)
``explain_last``    the last / latest / most recent *run* (singular) of an agent
``why_not_fired``   a negation before fire / trigger / react / respond / run on
``test_fire``       a JSON payload, or test / try / fire / invoke right before the agent
``agent_tools``     tools / catalog / allowlist / capabilities
``usage``           tokens / usage / cost / spend / expensive / budget
``doctor``          doctor / needs fixing / broken / health / wrong / problems / issues
``list_runs``       runs / history / recent / latest / last / activity
``help``            anything else
==================  ==================================================================
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Intent = Literal[
    "destructive",
    "resume_trigger",
    "pause_trigger",
    "explain_run",
    "explain_event",
    "explain_last",
    "why_not_fired",
    "test_fire",
    "agent_tools",
    "usage",
    "doctor",
    "list_runs",
    "help",
]
UsageGroup = Literal["agent", "trigger", "model", "hour"]

RUN_ID = re.compile(r"\brun_[0-9a-hjkmnp-tv-z]{26}\b")
"""A real run id (``run_`` and 26 Crockford base32 characters): what answers cite."""
EVENT_ID = re.compile(r"\bevt_[0-9a-hjkmnp-tv-z]{26}\b")
_LOOSE_ID = r"\b{prefix}_[0-9a-z]{{3,}}\b"  # a mistyped id is still answered ("no run …")
_COMMAND = re.compile(r"`(cairn [^`]+)`")

_DESTRUCTIVE = re.compile(r"\b(delete|destroy|remove|wipe|purge|erase|revoke|prune|get rid of)\b")
_PAUSE = re.compile(r"\b(pause|suspend|disable)\b")
_RESUME = re.compile(r"\b(resume|unpause|re-?enable)\b")
_QUESTION = re.compile(r"^(why|how|what|when|who|which|is|was|were|did|does|do|has|have)\b")
_NOT_FIRED = re.compile(
    r"\b(didn'?t|did not|doesn'?t|does not|don'?t|never|not|won'?t|isn'?t|wasn'?t|no)\b"
    r".*\b(fire|fired|fires|firing|trigger|triggered|react|reacted|respond|responded|run on)\b"
)
_TEST_VERB = r"\b(?:test|try|fire|invoke|run)(?:-fire)?\s+(?:out\s+)?(?:the\s+|my\s+|our\s+)?"
_TOOLS = re.compile(r"\b(tools?|catalog|allowlist|capabilit(y|ies))\b")
_USAGE = re.compile(r"\b(tokens?|usage|cost|costs|spend|spent|spending|expensive|budget)\b")
_DOCTOR = re.compile(
    r"\b(doctor|needs? fixing|broken|health|healthy|wrong|problems?|issues?|check ?up)\b"
)
_LAST_RUN = re.compile(r"\b(last|latest|most recent|previous|newest)\s+run\b(?!s)")
_RUNS = re.compile(r"\b(runs?|history|recent|latest|last|happened|activity)\b")
_LIMIT = re.compile(
    r"\b(?:last|latest|recent|past|top|first)\s+(\d{1,4})\b(?!\s*(?:min|minutes?|h|hours?|"
    r"hrs?|d|days?|w|weeks?)\b)|\b(\d{1,4})\s+(?:most\s+recent\s+|latest\s+|last\s+)?runs\b"
)
_WINDOW = re.compile(
    r"\b(?:last|past|previous)\s+(\d+(?:\.\d+)?)?\s*(minutes?|mins?|hours?|hrs?|days?|weeks?)\b"
)
_UNIT_S = {"minute": 60.0, "hour": 3600.0, "day": 86400.0, "week": 604800.0}
_UNIT_NAMES = {"min": "minute", "mins": "minute", "hr": "hour", "hrs": "hour"}
_STATUS_WORDS = {
    "failed": "failed",
    "failing": "failed",
    "failures": "failed",
    "errored": "failed",
    "succeeded": "succeeded",
    "successful": "succeeded",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "running": "running",
    "queued": "queued",
}
_NOT_AN_AGENT = {
    "the", "my", "our", "your", "this", "that", "which", "what", "each", "every", "any",
    "an", "a", "one", "some", "most", "new", "other", "same", "per", "by",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Question:
    """A question taken apart. ``text`` is lower-cased, without the JSON payload;
    ``agent`` is a slug of the sandbox, ``unknown_agent`` a word called an agent that is
    none; ``window`` says ``since_s`` in words ("since midnight (…)")."""

    question: str
    text: str
    intent: Intent
    agent: str | None
    unknown_agent: str | None
    run_ids: list[str]
    trigger_ids: list[str]
    event_ids: list[str]
    source_ids: list[str]
    key_ids: list[str]
    payload: Any = None
    has_payload: bool = False
    limit: int | None = None
    since_s: float | None = None
    window: str | None = None
    status: str | None = None
    usage_by: UsageGroup = "agent"

    def hints(self) -> dict[str, Any]:
        """The event a Concierge agent is fired with: the question and what was found in it
        (so a tool's arguments can be taken from the event)."""
        return {
            "question": self.question,
            "agents": [self.agent] if self.agent else [],
            "run_ids": self.run_ids,
            "trigger_ids": self.trigger_ids,
            "event_ids": self.event_ids,
            "payload": self.payload,
        }


def parse_question(question: str, slugs: list[str]) -> Question:
    """Take ``question`` apart; ``slugs`` are the sandbox's agents."""
    payload, has_payload, rest = _extract_payload(question)
    text = " ".join(rest.lower().split())
    agent = _match_agent(text, slugs)
    unknown = None if agent else _named_agent(text)
    since_s, window = _window(text)
    run_ids = unique(re.findall(_LOOSE_ID.format(prefix="run"), text))
    trigger_ids = unique(re.findall(_LOOSE_ID.format(prefix="trg"), text))
    event_ids = unique(re.findall(_LOOSE_ID.format(prefix="evt"), text))
    # An agent's slug is a name, not a keyword: the "broken" agent asks for no doctor.
    keywords, named = text, unknown
    if agent is not None:
        keywords = re.sub(rf"(?<![a-z0-9-]){re.escape(agent)}(?![a-z0-9-])", "<agent>", text)
        named = "<agent>"
    intent = _intent(keywords, run_ids, trigger_ids, event_ids, has_payload, named)
    return Question(
        question=question.strip(),
        text=text,
        intent=intent,
        agent=agent,
        unknown_agent=unknown,
        run_ids=run_ids,
        trigger_ids=trigger_ids,
        event_ids=event_ids,
        source_ids=unique(re.findall(_LOOSE_ID.format(prefix="src"), text)),
        key_ids=unique(re.findall(_LOOSE_ID.format(prefix="key"), text)),
        payload=payload,
        has_payload=has_payload,
        limit=_limit(text),
        since_s=since_s,
        window=window,
        status=next(
            (s for word, s in _STATUS_WORDS.items() if re.search(rf"\b{word}\b", text)), None
        ),
        usage_by=_usage_by(text),
    )


def _intent(
    text: str,
    run_ids: list[str],
    trigger_ids: list[str],
    event_ids: list[str],
    has_payload: bool,
    named: str | None,
) -> Intent:
    command = not _QUESTION.search(text)  # "pause trigger …", not "why is it paused"
    about_triggers = bool(trigger_ids) or "trigger" in text
    if _DESTRUCTIVE.search(text):
        return "destructive"
    if command and about_triggers and _RESUME.search(text):
        return "resume_trigger"
    if command and about_triggers and _PAUSE.search(text):
        return "pause_trigger"
    if run_ids:
        return "explain_run"
    if event_ids:
        return "explain_event"
    if _LAST_RUN.search(text):
        return "explain_last"
    if _NOT_FIRED.search(text) and not _TOOLS.search(text):
        return "why_not_fired"
    if _asks_for_test(text, has_payload, named):
        return "test_fire"
    if _TOOLS.search(text):
        return "agent_tools"
    if _USAGE.search(text):
        return "usage"
    if _DOCTOR.search(text):
        return "doctor"
    if _RUNS.search(text):
        return "list_runs"
    return "help"


def _asks_for_test(text: str, has_payload: bool, named: str | None) -> bool:
    """A payload with an agent or a test verb, or a test verb right before the agent
    ("test the triage agent"); never a mere word such as "test runs"."""
    if has_payload:
        return named is not None or bool(re.search(_TEST_VERB, text))
    return named is not None and bool(re.search(_TEST_VERB + re.escape(named) + r"(?!\w)", text))


def _extract_payload(question: str) -> tuple[Any, bool, str]:
    """The first JSON object or array in the question, and the question without it."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[{\[]", question):
        try:
            value, end = decoder.raw_decode(question, match.start())
        except json.JSONDecodeError:
            continue
        return value, True, question[: match.start()] + " " + question[end:]
    return None, False, question


def _match_agent(text: str, slugs: list[str]) -> str | None:
    """The agent slug the question names: the one beside the word "agent" if several do,
    else the longest (``support-bot`` over ``support``)."""
    found = [s for s in slugs if re.search(rf"(?<![a-z0-9-]){re.escape(s)}(?![a-z0-9-])", text)]
    if not found:
        return None
    beside = [
        s
        for s in found
        if re.search(
            rf"(?<![a-z0-9-]){re.escape(s)}(?:'s)?\s+agent\b|\bagent\s+{re.escape(s)}\b", text
        )
    ]
    return max(beside or found, key=len)


def _named_agent(text: str) -> str | None:
    """A word the question calls an agent ("the billing agent") that is no agent's slug."""
    for match in re.finditer(
        r"\b([a-z0-9][a-z0-9-]*)(?:'s)?\s+agent\b|\bagent\s+([a-z0-9][a-z0-9-]*)", text
    ):
        word = match.group(1) or match.group(2)
        if word and word not in _NOT_AN_AGENT and not word.isdigit():
            return word
    return None


def _limit(text: str) -> int | None:
    match = _LIMIT.search(text)
    if not match:
        return None
    return max(1, min(int(match.group(1) or match.group(2)), 1000))


def _window(text: str) -> tuple[float | None, str | None]:
    """A window the question names, in seconds, and how to say it. "Today" is since local
    midnight, and the answer says so (with the offset), not "the last 24 hours"."""
    if re.search(r"\btoday\b|\bsince midnight\b", text):
        now = datetime.now().astimezone()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        since = max((now - midnight).total_seconds(), 1.0)
        offset = now.strftime("%z")
        return since, (
            f"since midnight ({midnight:%Y-%m-%d} 00:00 local time, UTC{offset[:3]}:{offset[3:]}"
            f"; {since / 3600:.1f} h ago)"
        )
    match = _WINDOW.search(text)
    if match:
        amount = float(match.group(1) or 1)
        unit = _UNIT_NAMES.get(match.group(2), match.group(2).rstrip("s"))
        plural = "" if amount == 1 else "s"
        return amount * _UNIT_S[unit], f"in the last {amount:g} {unit}{plural}"
    if re.search(r"\bthis week\b", text):
        return 7 * 86400.0, "in the last 7 days"
    return None, None


def _usage_by(text: str) -> UsageGroup:
    groups: tuple[UsageGroup, ...] = ("trigger", "model", "hour")
    for group in groups:
        if re.search(rf"\b(which|by|per|each|every)\s+{group}s?\b", text):
            return group
    return "hour" if re.search(r"\bhourly\b", text) else "agent"


def unique(values: list[str]) -> list[str]:
    """``values`` in order, once each."""
    return list(dict.fromkeys(values))


def cited_run_ids(text: str, *, exclude: str | None = None) -> list[str]:
    """The run ids ``text`` names, in order, once each."""
    return [run_id for run_id in unique(RUN_ID.findall(text)) if run_id != exclude]


def commands_in(text: str) -> list[str]:
    """CLI commands quoted in ``text`` (between backticks)."""
    return unique([command.strip() for command in _COMMAND.findall(text)])
