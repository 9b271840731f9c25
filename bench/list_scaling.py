"""List-runs latency must not grow with the ledger: 100 runs vs 1,000,000 runs.

Two scratch ledgers are built the same way (``bench._ledger``): a small one of 100 runs,
laid out so that every listing below finds its 20 runs in it as well (every listing then
returns the same 20 rows' worth of work on both), and a large one with the realistic spread
over agents, statuses, kinds and triggers (1,000,000 runs by default; if the first batches
say that would take more than about 60 s here, 300,000, and the output says so).

Then, in this process and warm, each listing is asked of both ledgers alternately through
``services.runs.list_runs`` (what the CLI and the API call): the 20 newest runs of
``support``, the same filtered by status, by trigger and by kind, and the second page
through the ``before=`` cursor. Each listing prints its median on both ledgers, their ratio
(the target: at most 1.5, i.e. the same cost) and the query plan SQLite chose for it on
the large ledger.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import anyio
from sqlalchemy import event

from bench._common import BenchError, Stats, Verdict, header, note, scratch_app, scratch_dir
from bench._ledger import SANDBOX, LedgerSummary, Shape, create_agents, populate
from cairn.domain.runs import Run
from cairn.services.app import App
from cairn.services.runs import RunQuery, list_runs

NAME = "list_scaling"
TARGET = 1.5
LIMIT = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument(
        "--runs", type=int, default=1_000_000, help="runs in the large ledger (1000000)"
    )
    parser.add_argument(
        "--small", type=int, default=100, help="runs in the small ledger, at least 100 (100)"
    )
    parser.add_argument("--repeat", type=int, default=300, help="timed listings per case (300)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=60.0,
        help="build the large ledger only if it fits this many seconds, else --fallback (60)",
    )
    parser.add_argument(
        "--fallback", type=int, default=300_000, help="large ledger size over budget (300000)"
    )


@dataclass(frozen=True, slots=True)
class Case:
    """One listing: a name, the query, and what every returned run must satisfy."""

    name: str
    query: RunQuery
    matches: Callable[[Run], bool]


@dataclass(slots=True)
class Ledger:
    """An open scratch ledger and what was written to it."""

    label: str
    app: App
    summary: LedgerSummary


def _cases(ledger: Ledger) -> list[Case]:
    trigger, _, rare_trigger = ledger.summary.triggers["support"]
    base = RunQuery(agent_slug="support", limit=LIMIT)
    first_page = list_runs(ledger.app, SANDBOX, base)
    cursor = first_page[-1].run_id
    return [
        Case("newest 20", base, lambda r: True),
        Case("status=failed", replace(base, status="failed"), lambda r: r.status == "failed"),
        Case(
            "trigger (60% of fires)",
            replace(base, trigger_id=trigger),
            lambda r: r.trigger_id == trigger,
        ),
        Case(
            "trigger (10% of fires)",
            replace(base, trigger_id=rare_trigger),
            lambda r: r.trigger_id == rare_trigger,
        ),
        Case("kind=manual", replace(base, kind="manual"), lambda r: r.kind == "manual"),
        Case(
            "page 2 (before=cursor)",
            replace(base, before=cursor),
            lambda r: r.run_id < cursor,
        ),
    ]


def _check(ledger: Ledger, case: Case, found: list[Run]) -> None:
    ids = [run.run_id for run in found]
    if ids != sorted(ids, reverse=True):
        raise BenchError(f"{ledger.label} / {case.name}: runs are not newest first")
    wrong = [run.run_id for run in found if run.agent_slug != "support" or not case.matches(run)]
    if wrong:
        raise BenchError(f"{ledger.label} / {case.name}: runs that do not match: {wrong[:3]}")
    if case.name == "newest 20" and ids[:1] != [ledger.summary.newest["support"]]:
        raise BenchError(f"{ledger.label} / newest 20: the newest run is missing")
    if len(found) != LIMIT:
        raise BenchError(f"{ledger.label} / {case.name}: {len(found)} runs, expected {LIMIT}")


def _query_plan(app: App, case: Case) -> list[str]:
    """The plan SQLite chooses for the listing's SQL (captured as it is sent)."""
    captured: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if "FROM runs" in statement and "ORDER BY" in statement:
            captured.append((statement, parameters))

    engine = app.store.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        list_runs(app, SANDBOX, case.query)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    if not captured:
        return ["(listing SQL not captured)"]
    statement, parameters = captured[-1]
    with app.store.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    return [str(row[-1]) for row in rows]


# The small ledger repeats this layout so that every listing finds its 20 runs there too:
# a listing that returns 4 rows instead of 20 would look cheaper for the wrong reason.
# (With one real run first, 99 bulk rows give 20 of each of the first four shapes.)
SMALL_PATTERN: tuple[Shape, ...] = (
    ("support", "failed", "trigger", 0),
    ("support", "succeeded", "trigger", 2),
    ("support", "succeeded", "manual", 0),
    ("support", "succeeded", "trigger", 0),
    ("support", "succeeded", "test", 0),
)


def _build(
    label: str, app: App, total: int, options: argparse.Namespace, *, dense: bool = False
) -> Ledger:
    agents = anyio.run(create_agents, app, None)
    summary = populate(
        app,
        agents,
        total,
        budget_s=options.budget_s if total > options.fallback else None,
        fallback_total=options.fallback,
        pattern=SMALL_PATTERN if dense else None,
    )
    note(
        f"{label} ledger: {summary.runs:,} runs built in {summary.seconds:.1f} s "
        f"(support: {summary.per_agent['support']:,})"
    )
    if summary.capped:
        note(
            f"NOTE: {total:,} runs would have taken over {options.budget_s:g} s on this "
            f"machine, so the large ledger holds {summary.runs:,} runs instead"
        )
    return Ledger(label, app, summary)


def _time_case(small: Ledger, large: Ledger, case_pair: tuple[Case, Case], repeat: int) -> Verdict:
    samples: dict[str, list[float]] = {small.label: [], large.label: []}
    counts: dict[str, int] = {}
    pairs = ((small, case_pair[0]), (large, case_pair[1]))
    for ledger, case in pairs:
        found = list_runs(ledger.app, SANDBOX, case.query)
        _check(ledger, case, found)
        counts[ledger.label] = len(found)
        for _ in range(10):
            list_runs(ledger.app, SANDBOX, case.query)
    for _ in range(repeat):
        for ledger, case in pairs:
            started = time.perf_counter()
            list_runs(ledger.app, SANDBOX, case.query)
            samples[ledger.label].append(time.perf_counter() - started)
    small_stats = Stats.of(samples[small.label])
    large_stats = Stats.of(samples[large.label])
    ratio = large_stats.median_ms / small_stats.median_ms
    name = case_pair[0].name
    note(
        f"{name:<24} small {small_stats.median_ms:6.3f} ms ({counts[small.label]:>2} rows)   "
        f"large {large_stats.median_ms:6.3f} ms ({counts[large.label]:>2} rows)   "
        f"ratio {ratio:5.2f}"
    )
    for line in _query_plan(large.app, case_pair[1]):
        note(f"{'':<24} plan: {line}")
    return Verdict(
        NAME,
        f"{name}: {large.summary.runs:,} vs {small.summary.runs:,} runs",
        ratio,
        TARGET,
    )


def run(options: argparse.Namespace) -> list[Verdict]:
    """Build both ledgers, time every listing on both, print medians, ratios and plans."""
    if options.small < len(SMALL_PATTERN) * LIMIT:
        raise BenchError(f"--small must be at least {len(SMALL_PATTERN) * LIMIT}")
    header(f"list_scaling: {options.small:,} vs {options.runs:,} runs, {options.repeat} listings")
    with (
        scratch_dir("list-small") as small_home,
        scratch_dir("list-large") as large_home,
        scratch_app(small_home) as small_app,
        scratch_app(large_home) as large_app,
    ):
        small = _build("small", small_app, options.small, options, dense=True)
        large = _build("large", large_app, options.runs, options)
        note("median per listing, warm, services.runs.list_runs(limit=20) for agent 'support':")
        verdicts = [
            _time_case(small, large, pair, options.repeat)
            for pair in zip(_cases(small), _cases(large), strict=True)
        ]
    for verdict in verdicts:
        note(verdict.line())
    return verdicts


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.list_scaling``."""
    parser = argparse.ArgumentParser(prog="python -m bench list_scaling", description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
