"""How the Concierge reads a question: ids, the agent it names, a payload, a window, and
what it asks for (its *intent*). Pure and deterministic, so each form is pinned by a test
without a ledger; ``cairn.services.concierge`` answers what this finds.

Intents are tried in the order of ``_intent`` (the first that fits wins), each recognised
by the words of the pattern it names. A question that names an agent but nothing else it
can place gets ``agent_status``, a named trigger ``why_not_fired`` for its agent, one that
names nothing ``help``. The words for time and for typo'd slugs are in
``docs/concierge.md``.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cairn.domain.usage import UsageBy
from cairn.text import unique

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
    "agent_status",
    "problems",
    "doctor",
    "list_runs",
    "help",
]

RUN_ID = re.compile(r"\brun_[0-9a-hjkmnp-tv-z]{26}\b")
"""A real run id (``run_`` and 26 Crockford base32 characters): what answers cite."""
EVENT_ID = re.compile(r"\bevt_[0-9a-hjkmnp-tv-z]{26}\b")
_LOOSE_ID = r"\b{prefix}_[0-9a-z]{{3,}}\b"  # a mistyped id is still answered ("no run …")
_COMMAND = re.compile(r"`(cairn [^`]+)`")

_DESTRUCTIVE = re.compile(r"\b(delete|destroy|remove|wipe|purge|erase|revoke|prune|get rid of)\b")
_PAUSE = re.compile(
    r"\b(pause|suspend|disable|stop|halt|kill|mute|silence|shut (?:it |him |her |them )?"
    r"(?:down|off|up)|turn (?:\S+ )?off|switch (?:\S+ )?off)\b"
)
_RESUME = re.compile(
    r"\b(resume|unpause|re-?enable|restart|turn (?:\S+ )?back on|switch (?:\S+ )?back on|"
    r"start (?:\S+ )?again)\b"
)
_QUESTION = re.compile(
    r"^(why|how|what|when|who|which|is|was|were|did|does|do|has|have|are|where)\b"
)
_NOT_FIRED = re.compile(
    r"\b(didn'?t|did not|doesn'?t|does not|don'?t|never|not|won'?t|isn'?t|wasn'?t|no|"
    r"nothing|hasn'?t|haven'?t|has not|have not|aren'?t|stopped)"
    r"\b.*\b(fire|fired|fires|firing|trigger|triggered|triggers|react|reacted|respond|"
    r"responded|run|runs|ran|running|start|started|starts|kick|kicked|kicks|go off|went off)\b"
)
_STATUS = re.compile(
    r"\b(ok|okay|alright|all right|fine|healthy|health|working|work|works|broken|broke|break|"
    r"failing|fail|fails|failed|doing nothing|does nothing|not working|down|dead|wrong|"
    r"problems?|issues?|stuck|status|up to|going on|happening|happened|errors?|erroring|"
    r"misbehaving|flaky|weird|off|what'?s up|how'?s)\b"
)
_PROBLEMS = re.compile(
    r"\b(break|broke|broken|breaking|wrong|problems?|issues?|failing|failures?|fail|failed|"
    r"errors?|erroring|went bad|blew up|blow up|on fire|alerts?|incidents?|trouble)\b"
)
_LISTING = re.compile(
    r"\b(show|list|give|display|get|see|view|print)\b.*\bruns?\b|\bruns (of|for|from|by|"
    r"in|since|yesterday|today)\b|\bwhich runs\b"
)
_TEST_VERB = r"\b(?:test|try|fire|invoke|run)(?:-fire)?\s+(?:out\s+)?(?:the\s+|my\s+|our\s+)?"
_TOOLS = re.compile(r"\b(tools?|catalog|allowlist|capabilit(y|ies))\b")
_USAGE = re.compile(
    r"\b(tokens?|usage|cost|costs|costing|spend|spent|spending|expensive|pricey|budget|"
    r"money|dollars?|bill|burn|burning|burnt|runaway|cheap)\b|\$"
)
_DOCTOR = re.compile(
    r"\b(doctor|needs? fixing|needs? attention|health|healthy|check ?up|checkup|"
    r"everything (ok|okay|fine|alright|good|working)|all (ok|okay|good|fine))\b"
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
_SHORT_WINDOW = re.compile(r"\b(?:last|past|previous|in the last)\s+(\d+)\s*(h|d|m|w)\b")
_UNIT_S = {"minute": 60.0, "hour": 3600.0, "day": 86400.0, "week": 604800.0}
_UNIT_NAMES = {
    **dict.fromkeys(("min", "mins", "m"), "minute"),
    **dict.fromkeys(("hr", "hrs", "h"), "hour"),
    "d": "day",
    "w": "week",
}
_STATUS_WORDS = {  # the first status whose word the question has wins
    **dict.fromkeys(("failed", "failing", "failures", "errored"), "failed"),
    **dict.fromkeys(("succeeded", "successful"), "succeeded"),
    **dict.fromkeys(("cancelled", "canceled"), "cancelled"),
    "running": "running",
    "queued": "queued",
}
_NOT_AN_AGENT = {
    "the", "my", "our", "your", "this", "that", "which", "what", "each", "every", "any",
    "an", "a", "one", "some", "most", "new", "other", "same", "per", "by",
}  # fmt: skip
_NOT_A_TYPO = {
    "agent", "agents", "trigger", "triggers", "runs", "tools", "today", "yesterday", "since",
    "hours", "minutes", "days", "weeks", "about", "events", "event", "working", "healthy",
    "nothing", "doing", "failed", "failing", "broken", "money", "tokens", "usage", "pause",
    "resume", "latest", "recent", "there", "their", "which", "where", "what", "show",
    "last", "past", "this", "that", "with", "from", "into", "have", "does", "didn't",
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
    typo: str | None  # the word taken as ``agent`` because it was close to its slug
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
    until: datetime | None = None  # a closed window's end ("yesterday"); else now
    status: str | None = None
    usage_by: UsageBy = "agent"

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
    text = " ".join(rest.lower().replace("\u2019", "'").split())
    agent = _match_agent(text, slugs)
    unknown = None if agent else _named_agent(text)
    typo = None
    if agent is None:
        typo, agent = _close_agent(text, slugs, unknown)
        if agent is not None:
            unknown = None
    since_s, window, until = _window(text)
    run_ids = unique(re.findall(_LOOSE_ID.format(prefix="run"), text))
    trigger_ids = unique(re.findall(_LOOSE_ID.format(prefix="trg"), text))
    event_ids = unique(re.findall(_LOOSE_ID.format(prefix="evt"), text))
    # An agent's slug is a name, not a keyword: the "broken" agent asks for no doctor.
    keywords, named = text, unknown
    if agent is not None:
        named_as = typo or agent
        keywords = re.sub(rf"(?<![a-z0-9-]){re.escape(named_as)}(?![a-z0-9-])", "<agent>", text)
        named = "<agent>"
    intent = _intent(keywords, run_ids, trigger_ids, event_ids, has_payload, named)
    return Question(
        question=question.strip(),
        text=text,
        intent=intent,
        agent=agent,
        unknown_agent=unknown,
        typo=typo,
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
        until=until,
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
    about_triggers = bool(trigger_ids) or "trigger" in text or named == "<agent>"
    if _DESTRUCTIVE.search(text):
        return "destructive"
    if command and about_triggers and not run_ids and _RESUME.search(text):
        return "resume_trigger"
    if command and about_triggers and not run_ids and _PAUSE.search(text):
        return "pause_trigger"
    if run_ids:
        return "explain_run"
    if event_ids:
        return "explain_event"
    if _LAST_RUN.search(text):
        return "explain_last"
    if _NOT_FIRED.search(text) and not _TOOLS.search(text) and not _USAGE.search(text):
        return "why_not_fired"
    if _asks_for_test(text, has_payload, named):
        return "test_fire"
    if _TOOLS.search(text):
        return "agent_tools"
    if _USAGE.search(text):
        return "usage"
    if _LISTING.search(text):
        return "list_runs"
    agent = named == "<agent>"
    if agent and (_STATUS.search(text) or _DOCTOR.search(text)):
        return "agent_status"
    if _DOCTOR.search(text):
        return "doctor"
    if _PROBLEMS.search(text) or re.search(r"\bwhat'?s (up|going on)\b", text):
        return "problems"
    if _RUNS.search(text):
        return "list_runs"
    if agent:
        return "agent_status"  # unclear, but about an agent: what Cairn knows about it
    if trigger_ids:
        return "why_not_fired"
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


def _close_agent(text: str, slugs: list[str], unknown: str | None) -> tuple[str | None, str | None]:
    """A word that looks like a mistyped slug ("billng" for billing): (word, slug)."""
    words = [unknown] if unknown else []
    words += re.findall(r"[a-z][a-z0-9-]{3,}", text)
    for word in words:
        if word in _NOT_A_TYPO or word in _NOT_AN_AGENT:
            continue
        close = difflib.get_close_matches(word, slugs, n=1, cutoff=0.8)
        if close:
            return word, close[0]
    return None, None


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


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SINCE_CLOCK = re.compile(r"\bsince (\d{1,2})(?::(\d{2}))?\s*(am|pm)?\b")
_SINCE_DATE = re.compile(r"\bsince (\d{4}-\d{2}-\d{2})\b")


def _window(text: str) -> tuple[float | None, str | None, datetime | None]:
    """A window the question names: seconds back from now, how to say it, and its end when
    it is not now ("yesterday"). Days start at local midnight, and the answer says so (with
    the offset), not "the last 24 hours"."""
    now = datetime.now().astimezone()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if re.search(r"\byesterday\b", text) and not re.search(r"\bsince yesterday\b", text):
        day = midnight - timedelta(days=1)
        return (
            (now - day).total_seconds(),
            f"yesterday ({day:%Y-%m-%d} 00:00 to 24:00 local time, {_utc(now)})",
            midnight,
        )
    start = _since(text, now, midnight)
    if start is not None:
        since = max((now - start).total_seconds(), 1.0)
        return since, f"since {start:%Y-%m-%d %H:%M} local time ({_utc(now)})", None
    if re.search(r"\btoday\b|\bsince midnight\b|\bthis morning\b", text):
        since = max((now - midnight).total_seconds(), 1.0)
        return (
            since,
            (
                f"since midnight ({midnight:%Y-%m-%d} 00:00 local time, {_utc(now)}"
                f"; {since / 3600:.1f} h ago)"
            ),
            None,
        )
    match = _WINDOW.search(text) or _SHORT_WINDOW.search(text)
    if match:
        amount = float(match.group(1) or 1)
        word = match.group(2)
        unit = _UNIT_NAMES.get(word, word.rstrip("s"))
        plural = "" if amount == 1 else "s"
        return amount * _UNIT_S[unit], f"in the last {amount:g} {unit}{plural}", None
    if re.search(r"\bthis week\b", text):
        return 7 * 86400.0, "in the last 7 days", None
    return None, None, None


def _since(text: str, now: datetime, midnight: datetime) -> datetime | None:
    """The start a "since …" names: a clock time today (yesterday if still ahead), a
    weekday (its latest), yesterday, or a date."""
    if re.search(r"\bsince yesterday\b", text):
        return midnight - timedelta(days=1)
    for index, day in enumerate(_WEEKDAYS):
        if re.search(rf"\bsince (?:last )?{day}\b", text):
            back = (now.weekday() - index) % 7 or 7
            return midnight - timedelta(days=back)
    match = _SINCE_DATE.search(text)
    if match:
        try:
            return datetime.fromisoformat(match.group(1)).astimezone()
        except ValueError:
            return None
    match = _SINCE_CLOCK.search(text)
    if match:
        hour, minute, half = int(match.group(1)), int(match.group(2) or 0), match.group(3)
        if half == "pm" and hour < 12:
            hour += 12
        if half == "am" and hour == 12:
            hour = 0
        if hour > 23 or minute > 59 or (half is None and match.group(2) is None):
            return None  # "since 3" is no time
        start = midnight.replace(hour=hour, minute=minute)
        return start if start <= now else start - timedelta(days=1)
    return None


def _utc(now: datetime) -> str:
    offset = now.strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


def _usage_by(text: str) -> UsageBy:
    groups: tuple[UsageBy, ...] = ("trigger", "model", "hour")
    for group in groups:
        if re.search(rf"\b(which|by|per|each|every)\s+{group}s?\b", text):
            return group
    return "hour" if re.search(r"\bhourly\b", text) else "agent"


def cited_run_ids(text: str, *, exclude: str | None = None) -> list[str]:
    """The run ids ``text`` names, in order, once each."""
    return [run_id for run_id in unique(RUN_ID.findall(text)) if run_id != exclude]


def commands_in(text: str) -> list[str]:
    """CLI commands quoted in ``text`` (between backticks)."""
    return unique([command.strip() for command in _COMMAND.findall(text)])
