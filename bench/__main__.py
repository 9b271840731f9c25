"""``python -m bench [NAME [options]]``: run every benchmark, or one, and sum up the verdicts.

The exit code is 0 when everything was measured (targets missed included: a miss is a
result, not a crash), 1 when a benchmark could not measure what it claims, and with
``--strict`` also 1 when a target was missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from types import ModuleType

from bench import (
    cli_cold,
    explain,
    ingest,
    list_scaling,
    mcp_server,
    model_turn,
    pages,
    resolution,
    runner_overhead,
    server,
    throughput,
    usage,
    webhook_providers,
)
from bench._common import BenchError, Verdict, header, note

BENCHMARKS: dict[str, ModuleType] = {
    runner_overhead.NAME: runner_overhead,
    cli_cold.NAME: cli_cold,
    list_scaling.NAME: list_scaling,
    server.NAME: server,
    model_turn.NAME: model_turn,
    usage.NAME: usage,
    explain.NAME: explain,
    pages.NAME: pages,
    throughput.NAME: throughput,
    webhook_providers.NAME: webhook_providers,
    ingest.NAME: ingest,
    resolution.NAME: resolution,
    mcp_server.NAME: mcp_server,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Cairn's benchmarks beside their peers. With no NAME, runs them all.",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    names = parser.add_subparsers(dest="name", metavar="NAME")
    for name, module in BENCHMARKS.items():
        sub = names.add_parser(name, help=(module.__doc__ or "").splitlines()[0])
        add_arguments: Callable[[argparse.ArgumentParser], None] = module.add_arguments
        add_arguments(sub)
        sub.add_argument(
            "--strict",
            action="store_true",
            default=argparse.SUPPRESS,  # keep a --strict given before NAME
            help="exit 1 when a target is missed",
        )
    return parser


def _defaults(name: str) -> argparse.Namespace:
    """The options of benchmark ``name`` with nothing given."""
    sub = argparse.ArgumentParser()
    BENCHMARKS[name].add_arguments(sub)
    return sub.parse_args([])


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks and print every verdict at the end."""
    options = _parser().parse_args(argv)
    plan = [(options.name, options)] if options.name else [(n, _defaults(n)) for n in BENCHMARKS]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores; load average {load}")
    started = time.perf_counter()
    verdicts: list[Verdict] = []
    try:
        for name, bench_options in plan:
            run: Callable[[argparse.Namespace], list[Verdict]] = BENCHMARKS[name].run
            verdicts.extend(run(bench_options))
    except BenchError as error:
        print(f"\nbenchmark error: {error}", file=sys.stderr)
        return 1
    header(f"summary ({time.perf_counter() - started:.0f} s)")
    for verdict in verdicts:
        note(verdict.line())
    return 1 if options.strict and not all(v.passed for v in verdicts) else 0


if __name__ == "__main__":
    raise SystemExit(main())
