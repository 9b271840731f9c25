"""The runs list's queries: filters from the query string, keyset pages, id-prefix search,
the outcome scan and the summary strip, all through ``cairn.api.operations``.

Kept apart from the routes (``cairn.web.pages``) because this is where the ledger's size
matters: every function here reads one bounded keyset page (or a bounded number of them),
or one usage aggregate, whatever the number of runs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlencode

from cairn.api import operations as ops
from cairn.domain.runs import RUN_KINDS, RUN_STATUSES
from cairn.durations import parse_duration
from cairn.errors import NotFound, UsageError
from cairn.services.usage import usage
from cairn.web import views

PAGE_SIZE = 50
MAX_TRAIL = 31 * 30
"""How much "previous" history a runs page carries (30 pages of cursors)."""
RUN_ID = re.compile(r"^run_[0-9a-z]{26}$")
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


@dataclass(frozen=True, slots=True)
class RunFilters:
    """The runs page's query parameters, checked (a bad value is dropped with a notice)."""

    agent: str = ""
    status: str = ""
    trigger: str = ""
    kind: str = ""
    since: str = ""
    q: str = ""
    outcome: str = ""
    before: str = ""
    trail: str = ""

    def query(self, **changes: str) -> str:
        """This filter set as a query string, with ``changes``, empty values left out."""
        values = asdict(self) | changes
        return urlencode({k: v for k, v in values.items() if v})

    def next_query(self, next_before: str) -> str:
        """The older page: this page's cursor joins the trail, so "previous" can come back
        (keyset pages have no offsets to go back by)."""
        steps = [*self.trail.split(","), self.before] if self.trail else [self.before]
        trail = ",".join(step for step in steps if step is not None)[-MAX_TRAIL:]
        return self.query(before=next_before, trail=trail if self.before else "")

    def previous_query(self) -> str:
        """The newer page: the last cursor of the trail."""
        steps = self.trail.split(",") if self.trail else []
        back = steps.pop() if steps else ""
        return self.query(before=back, trail=",".join(steps))

    @property
    def active(self) -> bool:
        """Whether anything narrows the listing."""
        return any(
            (self.agent, self.status, self.trigger, self.kind, self.since, self.q, self.outcome)
        )


def _checked_filters(params: dict[str, str]) -> tuple[RunFilters, list[str]]:
    notices: list[str] = []

    def pick(name: str, allowed: tuple[str, ...]) -> str:
        value = params.get(name, "").strip()
        if value and value not in allowed:
            notices.append(f"ignored {name} {value!r}: use one of {', '.join(allowed)}")
            return ""
        return value

    filters = RunFilters(
        agent=params.get("agent", "").strip(),
        status=pick("status", RUN_STATUSES),
        trigger=params.get("trigger", "").strip(),
        kind=pick("kind", RUN_KINDS),
        since=pick("since", tuple(value for value, _ in views.WINDOWS if value)),
        q=params.get("q", "").strip().lower(),
        outcome=pick("outcome", tuple(value for value, _ in OUTCOME_CHOICES if value)),
        before=params.get("before", "").strip(),
        trail=",".join(step for step in params.get("trail", "").split(",") if RUN_ID.match(step)),
    )
    return filters, notices


def _prefix_bound(prefix: str) -> str | None:
    """The smallest run id above every id that starts with ``prefix`` (``None``: no bound)."""
    head, body = prefix[:4], list(prefix[4:])
    while body:
        position = ID_ALPHABET.find(body.pop())
        if position < len(ID_ALPHABET) - 1:
            return head + "".join(body) + ID_ALPHABET[position + 1]
    return None


def _search_runs(
    caller: ops.Caller, filters: RunFilters
) -> tuple[list[dict[str, Any]], str | None]:
    """Runs whose id starts with ``filters.q`` (``run_`` optional), newest first. Ids sort
    by time, so the matches are the newest runs below the prefix's upper bound: one keyset
    page, whatever the size of the ledger."""
    prefix = filters.q if filters.q.startswith("run_") else f"run_{filters.q}"
    if len(prefix) > 30 or any(c not in ID_ALPHABET for c in prefix[4:]):
        raise UsageError(f"{filters.q!r} is not (the start of) a run id")
    if RUN_ID.match(prefix):
        try:
            run = ops.get_run(caller, prefix)
        except NotFound:
            return [], None
        matches = all(
            (
                not filters.agent or run["agent_slug"] == filters.agent,
                not filters.status or run["status"] == filters.status,
                not filters.kind or run["kind"] == filters.kind,
                not filters.trigger or run["trigger_id"] == filters.trigger,
            )
        )
        return ([run] if matches else []), None
    bounds = [b for b in (_prefix_bound(prefix), filters.before) if b]
    page = _list(caller, filters, min(bounds) if bounds else None)
    found = [run for run in page["runs"] if run["run_id"].startswith(prefix)]
    more = page["next_before"] if len(found) == len(page["runs"]) else None
    return found, more


OUTCOME_CHOICES: tuple[tuple[str, str], ...] = (
    ("", "any outcome"),
    ("problems", "problems: failed, partial, no-op"),
    ("no-op", "silent no-ops"),
    ("partial", "partial"),
    *((name, name.replace("_", " ")) for name in views.OUTCOME_MEANINGS),
)
"""The runs page's outcome filter: an outcome, or a health the lists mark."""
SCAN_BATCH = 100
SCAN_LIMIT = 200
"""An outcome page reads at most this many runs (the ledger has no outcome index)."""


def _wanted(outcome: str, run: dict[str, Any]) -> bool:
    health = views.run_signal(run).health
    if outcome == "problems":
        return health in ("bad", "partial", "quiet")
    if outcome == "no-op":
        return run.get("outcome") in views.QUIET_OUTCOMES
    if outcome == "partial":
        return health == "partial"
    return bool(run.get("outcome") == outcome)


def _scan_outcome(
    caller: ops.Caller, filters: RunFilters
) -> tuple[list[dict[str, Any]], str | None]:
    """Runs of one outcome (or health), newest first. The ledger has no outcome index, so
    this reads keyset batches and keeps the matches, at most ``SCAN_LIMIT`` rows a page; the
    cursor is the last row read, so the next page continues exactly there."""
    found: list[dict[str, Any]] = []
    cursor: str | None = filters.before or None
    scanned = 0
    while scanned < SCAN_LIMIT:
        page = _list(caller, filters, cursor, SCAN_BATCH)
        for run in page["runs"]:
            scanned += 1
            cursor = run["run_id"]
            if _wanted(filters.outcome, run):
                found.append(run)
                if len(found) == PAGE_SIZE:
                    return found, cursor
        if page["next_before"] is None:
            return found, None
    return found, cursor


def _list(
    caller: ops.Caller, filters: RunFilters, before: str | None, limit: int = PAGE_SIZE
) -> dict[str, Any]:
    """A page of the runs the filters ask for (the outcome filter aside), older than ``before``."""
    page: dict[str, Any] = ops.list_runs(
        caller,
        agent=filters.agent or None,
        status=filters.status or None,
        trigger_id=filters.trigger or None,
        kind=filters.kind or None,
        since=filters.since or None,
        before=before,
        limit=limit,
    )
    return page


FAILURE_CAP = 200


def _summary(caller: ops.Caller, filters: RunFilters) -> dict[str, Any] | None:
    """The strip above the runs: runs, tokens and cost in the window (the usage report,
    one aggregate), failures (one indexed listing, capped), no-ops and partial runs among
    the newest page. "Any time" is summarised over the last 24 hours."""
    window = filters.since or "24h"
    label = dict(views.WINDOWS).get(window, window)
    try:
        report = usage(
            caller.app,
            caller.sandbox,
            since_s=parse_duration(window),
            agent=filters.agent or None,
            trigger_id=filters.trigger or None,
        ).to_dict()
        failures = replace(filters, status="failed", since=window)
        failed = _list(caller, failures, None, FAILURE_CAP)["runs"]
    except (NotFound, UsageError):
        return None
    totals = report["totals"]
    runs = [] if filters.q else _list(caller, filters, filters.before or None)["runs"]
    health = views.health_counts(runs)
    cost = "—" if not totals["runs"] else views.fmt_cost(totals.get("cost_micros"))
    return {
        "window_label": label,
        "runs": totals["runs"],
        "tokens": totals["tokens_in"] + totals["tokens_out"],
        "cost": cost,
        "failed": len(failed),
        "failed_text": f"{len(failed):,}+" if len(failed) >= FAILURE_CAP else f"{len(failed):,}",
        "quiet": health["quiet"],
        "partial": health["partial"],
        "page_size": PAGE_SIZE,
    }
