"""Cost-watch over a big ledger: ``usage`` for a 24 h window by agent, 1,000,000 runs.

One scratch SQLite ledger holds 1,000,000 finished runs (by default; if the first batches
say that would take more than about 120 s here, 300,000, and the output says so) created
over the last 30 days, evenly (about 33,000 runs a day), in time order as a live ledger
fills. They follow ``bench._ledger``'s realistic spread over four agents, statuses, kinds
and three triggers per agent, copy one real scripted run per agent for their JSON columns,
and vary what cost-watch sums: tokens in (200-4,000) and out (20-800) per run, and three
models, one of them missing from the price table (2 % of the runs, no cost), so the sums
cross priced and unpriced runs.

The rows are written straight into the ledger, so none is in the hourly rollup yet: the
rollup is rebuilt (``cairn usage rollup --rebuild``, timed), as a migrated ledger's would be.

Then, warm and in this process, each report is asked through ``services.usage.usage`` (what
the CLI and the API call) with a fixed end time, checked against the sums computed while
building, and timed: the issue's target (a 24 h window by agent, under 200 ms), the same
window by trigger, by model and by hour and for one agent, ``runaway_agents`` (the last
hour against two thresholds), and the worst case where the window holds every run (the
whole 30 days by agent), which must also answer in under 200 ms (read from the rollup). The
peer is the raw aggregate over the runs for that same window (what usage did before the
rollup), checked cell for cell against it and timed alongside. The query plan SQLite chose
for the 24 h target is printed too.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from sqlalchemy import event, insert

from bench._common import BenchError, Stats, Verdict, header, note, scratch_app, scratch_dir
from bench._ledger import (
    SANDBOX,
    TRIGGER_SHARES,
    _check_columns,
    _random_shapes,
    _sample_runs,
    _templates,
    create_agents,
)
from cairn.domain.usage import UsageFilter
from cairn.ids import id_at, new_id
from cairn.services.app import App
from cairn.services.usage import (
    UsageReport,
    rebuild_rollup,
    runaway_agents,
    set_threshold,
    usage,
)
from cairn.store import usage as usage_store
from cairn.store.schema import runs

NAME = "usage"
TARGET_MS = 200.0
DAY_S = 86400.0

# (model, share, micro-units per input token, per output token); None: not in the table.
MODELS: tuple[tuple[str, float, int | None, int | None], ...] = (
    ("anthropic:claude-sonnet-4-5", 0.58, 3, 15),
    ("openai:gpt-4.1-mini", 0.40, 0, 2),
    ("openai:ft-support-v3", 0.02, None, None),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--runs", type=int, default=1_000_000, help="runs in the ledger (1000000)")
    parser.add_argument(
        "--days", type=float, default=30.0, help="days the runs are spread over (30)"
    )
    parser.add_argument("--repeat", type=int, default=30, help="timed reports per case (30)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=120.0,
        help="build the full ledger only if it fits this many seconds, else --fallback (120)",
    )
    parser.add_argument(
        "--fallback", type=int, default=300_000, help="ledger size over budget (300000)"
    )


@dataclass(slots=True)
class Sums:
    """What one agent's runs in a window add up to, counted while building."""

    runs: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_micros: int = 0
    unpriced: int = 0


@dataclass(slots=True)
class Built:
    """The ledger as written: its size, its end time and the expected sums."""

    runs: int = 0
    seconds: float = 0.0
    until: float = 0.0
    capped: bool = False
    day: dict[str, Sums] = field(default_factory=dict)
    everything: dict[str, Sums] = field(default_factory=dict)


def _add(sums: dict[str, Sums], slug: str, row: dict[str, Any]) -> None:
    entry = sums.setdefault(slug, Sums())
    entry.runs += 1
    entry.tokens_in += row["tokens_in"]
    entry.tokens_out += row["tokens_out"]
    if row["cost_micros"] is None:
        entry.unpriced += 1
    else:
        entry.cost_micros += row["cost_micros"]


def build(app: App, total: int, days: float, options: argparse.Namespace) -> Built:
    """Write ``total`` runs spread evenly over ``days`` before now, oldest first."""
    agents = anyio.run(create_agents, app, None)
    slugs = list(agents)
    samples = anyio.run(_sample_runs, app, agents)
    templates = {slug: _templates(samples[slug]) for slug in slugs}
    triggers = {slug: [new_id("trg") for _ in TRIGGER_SHARES] for slug in slugs}
    rng = random.Random(11)
    draw = _random_shapes(rng, slugs)
    model_weights = [share for _, share, _, _ in MODELS]
    built = Built(until=time.time())
    start = built.until - days * DAY_S
    day_start = built.until - DAY_S
    # The sample runs are a few seconds old: inside both windows, so they count too.
    for slug, sample in samples.items():
        row = {
            "tokens_in": sample.usage.tokens_in,
            "tokens_out": sample.usage.tokens_out,
            "cost_micros": sample.cost_micros,
        }
        _add(built.day, slug, row)
        _add(built.everything, slug, row)
    built.runs = len(samples)
    stamps = sorted(rng.uniform(start, built.until - 60.0) for _ in range(total - built.runs))
    started = time.perf_counter()
    batch = 50_000
    target = len(stamps)
    offset = 0
    while offset < target:
        chunk = stamps[offset : min(offset + batch, target)]
        shapes = draw(len(chunk))
        models = rng.choices(MODELS, weights=model_weights, k=len(chunk))
        rows: list[dict[str, Any]] = []
        for stamp, (slug, status, kind, trig), model in zip(chunk, shapes, models, strict=True):
            at = datetime.fromtimestamp(stamp, UTC)
            tokens_in = rng.randint(200, 4000)
            tokens_out = rng.randint(20, 800)
            name, _, per_in, per_out = model
            cost = (
                None
                if per_in is None or per_out is None
                else tokens_in * per_in + tokens_out * per_out
            )
            row = templates[slug][status] | {
                "run_id": id_at("run", stamp),
                "kind": kind,
                "trigger_id": triggers[slug][trig] if kind == "trigger" else None,
                "event_payload": {"order_id": f"A-{built.runs + len(rows)}"},
                "model": name,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "cost_micros": cost,
                "created_at": at,
                "started_at": at,
                "finished_at": at,
                "heartbeat_at": at,
            }
            rows.append(row)
            _add(built.everything, slug, row)
            if stamp >= day_start:
                _add(built.day, slug, row)
        _check_columns(rows[0])
        with app.store.begin() as conn:
            conn.execute(insert(runs), rows)
        built.runs += len(rows)
        offset += len(chunk)
        elapsed = time.perf_counter() - started
        if target > options.fallback and elapsed / offset * target > options.budget_s:
            # Over budget: keep the spread by thinning the rest of the timeline, not cutting it.
            keep = max(options.fallback - built.runs, 0)
            rest = stamps[offset:]
            stamps = stamps[:offset] + sorted(rng.sample(rest, min(keep, len(rest))))
            target = len(stamps)
            built.capped = True
    built.seconds = time.perf_counter() - started
    return built


def _check(report: UsageReport, expected: dict[str, Sums], what: str) -> None:
    """The report must add up to exactly what was written."""
    got = {
        row.key: (row.runs, row.tokens_in, row.tokens_out, row.cost_micros, row.unpriced_runs)
        for row in report.rows
    }
    want = {
        slug: (s.runs, s.tokens_in, s.tokens_out, s.cost_micros, s.unpriced)
        for slug, s in expected.items()
    }
    if got != want:
        raise BenchError(f"{what}: usage does not add up\n  got  {got}\n  want {want}")
    if sum(report.totals.series) != report.totals.tokens:
        raise BenchError(f"{what}: the hourly series does not sum to the total tokens")


def _time(repeat: int, call: Any) -> tuple[Stats, Any]:
    result = call()
    for _ in range(3):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return Stats.of(samples), result


def _query_plan(app: App, call: Any) -> list[str]:
    """The plan SQLite chooses for the aggregate's SQL (captured as it is sent)."""
    captured: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if "FROM runs" in statement and "GROUP BY" in statement:
            captured.append((statement, parameters))

    engine = app.store.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    if not captured:
        return ["(aggregate SQL not captured)"]
    statement, parameters = captured[-1]
    with app.store.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    return [str(row[-1]) for row in rows]


def run(options: argparse.Namespace) -> list[Verdict]:
    """Build the ledger, check and time each report, print medians and the verdict."""
    header(
        f"usage: {options.runs:,} runs over {options.days:g} days, "
        f"{options.repeat} reports per case"
    )
    with scratch_dir("usage") as home, scratch_app(home) as app:
        built = build(app, options.runs, options.days, options)
        in_day = sum(s.runs for s in built.day.values())
        note(
            f"ledger: {built.runs:,} runs built in {built.seconds:.1f} s, spread evenly over "
            f"{options.days:g} days; {in_day:,} of them in the last 24 h"
        )
        if built.capped:
            note(
                f"NOTE: {options.runs:,} runs would have taken over {options.budget_s:g} s on "
                f"this machine, so the ledger holds {built.runs:,} runs instead"
            )
        until = built.until
        everything_s = options.days * DAY_S + 3600.0
        started = time.perf_counter()
        rolled = rebuild_rollup(app)
        note(
            f"rollup rebuilt from {rolled:,} runs in {time.perf_counter() - started:.1f} s "
            "(cairn usage rollup --rebuild)"
        )
        everything = UsageFilter(SANDBOX, until - everything_s, until, "agent")

        def aggregate(use_rollup: bool) -> Any:
            with app.store.connect() as conn:
                return usage_store.aggregate_usage(conn, everything, use_rollup=use_rollup)

        def ordered(cells: Any) -> Any:
            return sorted(cells, key=lambda c: (c.key or "", c.bucket))

        if ordered(aggregate(True)) != ordered(aggregate(False)):
            raise BenchError("the rollup's cells differ from the raw aggregate's")
        note("rollup cells == raw aggregate cells for the whole-ledger window")

        def day(by: str = "agent", **filters: Any) -> UsageReport:
            return usage(app, SANDBOX, since_s=DAY_S, by=by, until=until, **filters)

        started = time.perf_counter()
        first = day()
        note(
            f"first report after building (cache as the build left it): "
            f"{(time.perf_counter() - started) * 1000:.1f} ms"
        )
        _check(first, built.day, "24 h by agent")
        _check(
            usage(app, SANDBOX, since_s=everything_s, until=until),
            built.everything,
            "whole ledger by agent",
        )
        set_threshold(app, SANDBOX, "support", tokens_per_hour=1_000, pause_triggers=True)
        set_threshold(app, SANDBOX, "digest", cost_micros_per_hour=10**12)

        cases: list[tuple[str, Any]] = [
            ("24 h by agent (target)", lambda: day()),
            ("24 h by trigger", lambda: day("trigger")),
            ("24 h by model", lambda: day("model")),
            ("24 h by hour", lambda: day("hour")),
            ("24 h, agent support only", lambda: day(agent="support")),
            ("runaway_agents (last hour)", lambda: runaway_agents(app, SANDBOX, until=until)),
            (
                f"worst: all {built.runs:,} runs in the window",
                lambda: usage(app, SANDBOX, since_s=everything_s, until=until),
            ),
        ]
        note("median per report, warm, services.usage.usage(...):")
        target_stats: Stats | None = None
        worst_stats: Stats | None = None
        for name, call in cases:
            stats, result = _time(options.repeat, call)
            if isinstance(result, UsageReport):
                size = f"{result.totals.runs:>9,} runs, {len(result.rows):>3} rows"
            else:
                size = f"{len(result):>3} flags"
            note(f"{name:<36} {stats.line()}  [{size}]")
            if target_stats is None:
                target_stats = stats
            worst_stats = stats  # the last case
        peer, _ = _time(max(3, options.repeat // 10), lambda: aggregate(False))
        note(f"{'peer: raw aggregate, whole ledger':<36} {peer.line()}")
        assert target_stats is not None and worst_stats is not None
        for line in _query_plan(app, lambda: day()):
            note(f"{'':<36} plan (24 h by agent): {line}")
    verdicts = [
        Verdict(
            NAME,
            f"24 h window by agent over {built.runs:,} runs ({options.days:g} days): median "
            f"{target_stats.median_ms:.1f} ms (target < {TARGET_MS:g} ms)",
            target_stats.median_ms / TARGET_MS,
            1.0,
        ),
        Verdict(
            f"{NAME}-all",
            f"window holding all {built.runs:,} runs, by agent: median "
            f"{worst_stats.median_ms:.1f} ms (target < {TARGET_MS:g} ms; raw aggregate "
            f"{peer.median_ms:.1f} ms, {peer.median_ms / worst_stats.median_ms:.0f}x slower)",
            worst_stats.median_ms / TARGET_MS,
            1.0,
        ),
    ]
    for verdict in verdicts:
        note(verdict.line())
    return verdicts


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.usage``."""
    parser = argparse.ArgumentParser(prog="python -m bench usage", description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
