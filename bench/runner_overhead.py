"""Per-run overhead of a persisted Cairn run vs pydantic-ai's in-memory agent loop.

Cairn: a scripted agent whose script makes one builtin tool call (``json_extract``) and then
answers, fired through the real ``Runner`` with the SQLite ledger (row written when
accepted, final row and events written at the end), all in one event loop.

Peer: pydantic-ai's ``Agent`` with its offline ``TestModel`` and one tool, no persistence,
defined as in ``shared/peers/pydantic_ai_overhead.py``. It is measured three ways:

* ``agent.run`` in the same event loop as Cairn, in blocks that alternate with Cairn's,
  so both see the same machine state (the like-for-like figure);
* ``agent.run_sync`` per run, as the peer script does it;
* the peer script itself, as a subprocess with the same N (it prints only a mean).

The issue's target is a Cairn median at most 1/6 of pydantic-ai's; the verdict uses the
faster of the two in-process peer medians, so it never flatters Cairn.

OpenTelemetry export (``--otel``, on by default): the same persisted run with export off
(no ``OTEL_*`` variable: the plain ``cairn`` side above), on towards a local OTLP/HTTP
endpoint, and on towards a collector that is down, in alternating blocks. Target: export
on at most +50 % over off; a dead collector must not slow runs either.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from bench._common import (
    BenchError,
    Stats,
    Verdict,
    header,
    note,
    peers_dir,
    scratch_app,
    scratch_dir,
)
from bench._ledger import SANDBOX, create_agents
from cairn.domain.agents import Agent
from cairn.domain.runs import Run
from cairn.services.app import App
from cairn.services.runs import RunQuery, list_runs
from cairn.services.sources import available_sources

if TYPE_CHECKING:
    from pydantic_ai import Agent as PydanticAgent
    from pydantic_ai.agent import AgentRunResult

NAME = "runner_overhead"
TARGET = 1 / 6
OTEL_TARGET = 1.5
TOOL_NAME = "json_extract"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--runs", type=int, default=500, help="timed runs per side (500)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed runs first (50)")
    parser.add_argument("--block", type=int, default=50, help="runs per alternating block (50)")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile the Cairn runs and print top costs"
    )
    parser.add_argument(
        "--no-otel",
        dest="otel",
        action="store_false",
        help="skip the OpenTelemetry export figures (export off / on / collector down)",
    )


def _peer_agent() -> PydanticAgent[None, str]:
    """The peer script's agent: TestModel, the same system prompt, one plain tool."""
    from pydantic_ai import Agent as PydanticAgent
    from pydantic_ai.models.test import TestModel

    agent = PydanticAgent(TestModel(), system_prompt="You are a support agent.")

    @agent.tool_plain
    def lookup_order(order_id: str) -> str:
        return f"order {order_id}: shipped"

    return agent


def _check_peer(result: AgentRunResult[str]) -> None:
    """A pydantic-ai run must have made exactly one tool call, as Cairn's runs do."""
    from pydantic_ai.messages import ToolCallPart

    calls = sum(
        isinstance(part, ToolCallPart)
        for message in result.all_messages()
        for part in message.parts
    )
    if calls != 1:
        raise BenchError(f"pydantic-ai run made {calls} tool calls, expected 1")


def _check_run(run: Run) -> None:
    """A Cairn run must have succeeded with exactly one successful call of the tool."""
    calls = run.tool_calls
    if (
        run.status != "succeeded"
        or len(calls) != 1
        or calls[0].name != TOOL_NAME
        or calls[0].error is not None
    ):
        raise BenchError(
            f"run {run.run_id} is {run.status} ({run.error_message}) with "
            f"{[(c.name, c.error) for c in calls]}; expected succeeded with one {TOOL_NAME} call"
        )


def _verify_ledger(app: App, expected: int) -> None:
    """Read every persisted row back (newest first, page by page) and check it."""
    seen = 0
    before: str | None = None
    while True:
        page = list_runs(app, SANDBOX, RunQuery(agent_slug="support", before=before, limit=1000))
        for run in page:
            _check_run(run)
        seen += len(page)
        if len(page) < 1000:
            break
        before = page[-1].run_id
    if seen != expected:
        raise BenchError(f"the ledger holds {seen} runs of 'support', expected {expected}")


@dataclass(frozen=True, slots=True)
class Side:
    """One side of the comparison: a run to time, and a check of its result (not timed)."""

    fire: Callable[[int], Awaitable[Any]]
    check: Callable[[Any], None]


async def _alternate(
    sides: dict[str, Side], runs: int, warmup: int, block: int
) -> dict[str, list[float]]:
    """Warm each side up, then time ``runs`` runs of each in alternating blocks."""
    for side in sides.values():
        for i in range(warmup):
            side.check(await side.fire(-1 - i))
    samples: dict[str, list[float]] = {name: [] for name in sides}
    done = 0
    while done < runs:
        size = min(block, runs - done)
        for name, side in sides.items():
            times = samples[name]
            for i in range(done, done + size):
                started = time.perf_counter()
                result = await side.fire(i)
                times.append(time.perf_counter() - started)
                side.check(result)
        done += size
    return samples


def _profile_cairn(app: App, agent: Agent, runs: int) -> None:
    """cProfile ``runs`` more Cairn fires and print where the time goes."""
    available = available_sources(app, SANDBOX)

    async def fire_all() -> None:
        for i in range(runs):
            await app.runner.fire(agent, {"order_id": f"P-{i}"}, available, kind="test")

    profile = cProfile.Profile()
    profile.enable()
    anyio.run(fire_all)
    profile.disable()
    stats = pstats.Stats(profile)
    header(f"cProfile of {runs} Cairn runs (cumulative, top 30)")
    stats.sort_stats("cumulative").print_stats(30)
    header(f"cProfile of {runs} Cairn runs (own time, top 20)")
    stats.sort_stats("tottime").print_stats(20)


def _peer_script(runs: int) -> float | None:
    """Run the shared peer script with ``runs``; its mean ms/run, or ``None`` if unavailable."""
    script = peers_dir() / "pydantic_ai_overhead.py"
    done = subprocess.run(
        [sys.executable, str(script), str(runs)],
        capture_output=True,
        text=True,
        check=False,
    )
    note(f"peer script: {script} {runs}")
    if done.returncode != 0:
        note(f"  failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
        return None
    note(f"  {done.stdout.strip()}")
    match = re.search(r"([\d.]+) ms/run", done.stdout)
    return float(match.group(1)) if match else None


def _sync_peer(peer: PydanticAgent[None, str], runs: int, warmup: int) -> list[float]:
    """``run_sync`` per run, as the peer script does it (outside any event loop)."""
    for i in range(warmup):
        _check_peer(peer.run_sync(f"warm up {i}"))
    times: list[float] = []
    for i in range(runs):
        started = time.perf_counter()
        result = peer.run_sync(f"where is order {i}?")
        times.append(time.perf_counter() - started)
        _check_peer(result)
    return times


def run(options: argparse.Namespace) -> list[Verdict]:
    """Measure both sides and print medians, ratios and the verdict."""
    runs: int = options.runs
    warmup: int = options.warmup
    header(f"runner_overhead: {runs} runs per side after {warmup} warm-up runs")
    peer = _peer_agent()
    with scratch_dir("runner") as home, scratch_app(home) as app:
        agent = anyio.run(create_agents, app, ["support"])["support"]
        available = available_sources(app, SANDBOX)

        async def fire_cairn(i: int) -> Run:
            return await app.runner.fire(agent, {"order_id": f"A-{i}"}, available, kind="test")

        async def run_peer(i: int) -> AgentRunResult[str]:
            return await peer.run(f"where is order {i}?")

        sides = {
            "cairn": Side(fire_cairn, _check_run),
            "pydantic_ai_async": Side(run_peer, _check_peer),
        }
        started = time.perf_counter()
        samples = anyio.run(_alternate, sides, runs, warmup, options.block)
        elapsed = time.perf_counter() - started
        _verify_ledger(app, runs + warmup)
        note(f"ledger: {runs + warmup} rows read back, all succeeded with one {TOOL_NAME} call")
        sync_times = _sync_peer(peer, runs, warmup)

        cairn = Stats.of(samples["cairn"])
        peer_async = Stats.of(samples["pydantic_ai_async"])
        peer_sync = Stats.of(sync_times)
        note(f"(alternating blocks of {options.block}: {elapsed:.1f} s for both sides)")
        note(f"cairn persisted run     {cairn.line()}  {1000 / cairn.mean_ms:5.0f} runs/s")
        note(
            f"pydantic-ai agent.run   {peer_async.line()}  {1000 / peer_async.mean_ms:5.0f} runs/s"
        )
        note(f"pydantic-ai run_sync    {peer_sync.line()}  {1000 / peer_sync.mean_ms:5.0f} runs/s")
        script_mean = _peer_script(runs)
        note(f"ratio cairn median / agent.run median  {cairn.median_ms / peer_async.median_ms:.3f}")
        note(f"ratio cairn median / run_sync median   {cairn.median_ms / peer_sync.median_ms:.3f}")
        if script_mean is not None:
            note(f"ratio cairn mean / peer script mean    {cairn.mean_ms / script_mean:.3f}")
        peer_median = min(peer_async.median_ms, peer_sync.median_ms)
        verdict = Verdict(
            NAME,
            f"cairn median {cairn.median_ms:.3f} ms / pydantic-ai median {peer_median:.3f} ms",
            cairn.median_ms / peer_median,
            TARGET,
        )
        note(verdict.line())
        if options.profile:
            _profile_cairn(app, agent, runs)
        verdicts = [verdict]
        if options.otel:
            verdicts.append(_otel(options, app, agent, available))
    return verdicts


@contextmanager
def _exporting_app(home: Path, endpoint: str) -> Iterator[App]:
    """A scratch app whose runner exports to ``endpoint`` (the variables are read when the
    runner is made, then put back)."""
    saved = {
        k: os.environ.get(k) for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    }
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    os.environ["OTEL_EXPORTER_OTLP_TIMEOUT"] = "2"
    try:
        with scratch_app(home) as app:
            assert app.runner.observer is not None
            yield app
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _cpu_per_run(side: Side, runs: int, export: Any) -> float:
    """Process CPU milliseconds per run over ``runs`` runs, and the export's flush."""

    async def fire_all() -> None:
        for i in range(runs):
            side.check(await side.fire(10_000 + i))

    started = time.process_time()
    anyio.run(fire_all)
    if export is not None:
        export.flush(60.0)
    return (time.process_time() - started) * 1000 / runs


def _otel(
    options: argparse.Namespace, off_app: App, off_agent: Agent, off_available: Any
) -> Verdict:
    """Export off / on (local endpoint) / on with the collector down, alternating."""
    from bench._otlp_sink import Sink, closed_port_url
    from cairn.telemetry.otlp import OtlpExport

    header("runner_overhead: OpenTelemetry export off / on / collector down")
    sink = Sink()
    try:
        with (
            scratch_dir("otel-on") as on_home,
            scratch_dir("otel-down") as down_home,
            _exporting_app(on_home, sink.url) as on_app,
            _exporting_app(down_home, closed_port_url()) as down_app,
        ):
            on_agent = anyio.run(create_agents, on_app, ["support"])["support"]
            down_agent = anyio.run(create_agents, down_app, ["support"])["support"]
            on_available = available_sources(on_app, SANDBOX)
            down_available = available_sources(down_app, SANDBOX)

            def side(app: App, agent: Agent, available: Any) -> Side:
                async def fire(i: int) -> Run:
                    return await app.runner.fire(
                        agent, {"order_id": f"O-{i}"}, available, kind="test"
                    )

                return Side(fire, _check_run)

            sides = {
                "off": side(off_app, off_agent, off_available),
                "on": side(on_app, on_agent, on_available),
                "down": side(down_app, down_agent, down_available),
            }
            samples = anyio.run(_alternate, sides, options.runs, options.warmup, options.block)
            on_export = on_app.runner.observer
            down_export = down_app.runner.observer
            assert isinstance(on_export, OtlpExport) and isinstance(down_export, OtlpExport)
            flushed = on_export.flush(60.0)
            off, on, down = (Stats.of(samples[k]) for k in ("off", "on", "down"))
            note(f"export off              {off.line()}")
            note(f"export on (local)       {on.line()}")
            note(f"export on, collector down {down.line()}")
            stats = on_export.stats
            note(
                f"on: {stats.runs_exported} runs / {stats.spans_exported} spans exported "
                f"({sink.requests} requests, {sink.bytes / 1024:.0f} KiB), "
                f"{stats.runs_dropped} dropped, flushed={flushed}"
            )
            dead = down_export.stats
            note(
                f"down: {dead.runs_exported} exported, {dead.runs_dropped} runs dropped, counted "
                f"({dead.runs_dropped_queue_full} at a full queue)"
            )
            note(f"ratio on / off median    {on.median_ms / off.median_ms:.3f}")
            note(f"ratio down / off median  {down.median_ms / off.median_ms:.3f}")
            # CPU time is steadier than wall time on a shared machine, and it counts the
            # export thread's work (planning, metrics, encoding, sending), flush included.
            cpu_off = _cpu_per_run(sides["off"], options.runs, None)
            cpu_on = _cpu_per_run(sides["on"], options.runs, on_export)
            note(
                f"process CPU per run: off {cpu_off:.3f} ms, on {cpu_on:.3f} ms "
                f"(export included, ratio {cpu_on / cpu_off:.3f})"
            )
            verdict = Verdict(
                f"{NAME}.otel",
                f"export on {on.median_ms:.3f} ms / off {off.median_ms:.3f} ms (median)",
                on.median_ms / off.median_ms,
                OTEL_TARGET,
            )
            note(verdict.line())
            return verdict
    finally:
        sink.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.runner_overhead``."""
    parser = argparse.ArgumentParser(prog="python -m bench runner_overhead", description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
