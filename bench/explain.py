"""Explaining a run with 50 tool calls: ``explain_run`` warm, and ``cairn runs explain`` cold.

The issue asks for "why didn't it work?" answered in seconds. The run is as heavy as a
diagnosis reads: a scripted agent (builtin tools, ``max_turns`` 100) whose first turn makes
50 ``json_extract`` calls and whose second answers, fired for real through the runner, so
the row holds 50 tool calls and the ledger about 100 events (text, 50 calls, 50 results,
finish). A second run of the same shape has 10 of its 50 calls fail (a path the event does
not have), so the diagnosis has tool errors to name. Both sit in a ledger that also holds
100,000 other runs (``bench._ledger``; ``--ledger-runs``), so nothing is measured on an
empty database.

Measured: ``cairn.services.diagnosis.explain_run`` in this process, warm (median of
``--repeat``), against a target of 100 ms; and the whole ``cairn runs explain RUN_ID
--json`` command as a new process (interpreter, imports, store, diagnosis, JSON), against a
target of 1 s. Neither number is in the issue: they are this benchmark's reading of
"in seconds" (an interactive command well under one).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from typing import Any

import anyio

from bench._common import (
    BenchError,
    Stats,
    Verdict,
    clean_env,
    header,
    note,
    scratch_app,
    scratch_dir,
    time_process,
    venv_script,
)
from bench._ledger import SANDBOX, create_agents, populate
from cairn.domain.agents import ModelSettings
from cairn.domain.runs import Run
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.runs import fire_agent, get_run_events

NAME = "explain"
CALLS = 50
FAILING = 10
TARGET_WARM_MS = 100.0
TARGET_COLD_MS = 1000.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument(
        "--ledger-runs", type=int, default=100_000, help="other runs in the ledger (100000)"
    )
    parser.add_argument("--repeat", type=int, default=200, help="timed explains, warm (200)")
    parser.add_argument("--cold", type=int, default=10, help="cold CLI processes (10)")


def fifty_calls(failing: int) -> dict[str, Any]:
    """One turn of ``CALLS`` ``json_extract`` calls (the last ``failing`` ask for a field the
    event lacks, so they error), then an answer."""
    calls = [
        {
            "name": "json_extract",
            "arguments": {
                "document": "{{event}}",
                "path": f"items.{index}.sku" if index < CALLS - failing else "missing.field",
            },
        }
        for index in range(CALLS)
    ]
    return {
        "turns": [
            {"text": "Checking every item. ", "tool_calls": calls},
            {"text": "Checked {{results.-1}} and the rest."},
        ]
    }


async def _fire_heavy(app: App) -> dict[str, Run]:
    """Create the two agents and fire each once with a 50-item event."""
    payload = {"items": [{"sku": f"SKU-{index}"} for index in range(CALLS)]}
    made: dict[str, Run] = {}
    for slug, failing in (("fifty", 0), ("fifty-errors", FAILING)):
        await create_agent(
            app,
            SANDBOX,
            AgentSpec(
                slug=slug,
                system_prompt="Check each item of the order.",
                tool_sources=["builtin"],
                model_settings=ModelSettings(script=fifty_calls(failing), max_turns=100),
            ),
        )
        run = await fire_agent(app, SANDBOX, slug, payload)
        errored = sum(1 for call in run.tool_calls if call.error)
        if run.status != "succeeded" or len(run.tool_calls) != CALLS or errored != failing:
            raise BenchError(
                f"run of {slug} is {run.status} with {len(run.tool_calls)} calls "
                f"({errored} errored), expected {CALLS} ({failing}): {run.error_message}"
            )
        made[slug] = run
    return made


def _explainer() -> Any:
    try:
        from cairn.services.diagnosis import explain_run
    except ImportError as missing:
        raise BenchError(
            f"cairn.services.diagnosis.explain_run is not available: {missing}"
        ) from None
    return explain_run


def _warm(app: App, run: Run, repeat: int) -> tuple[Stats, Any]:
    explain_run = _explainer()
    explanation = explain_run(app, SANDBOX, run.run_id)
    for _ in range(10):
        explain_run(app, SANDBOX, run.run_id)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        explain_run(app, SANDBOX, run.run_id)
        samples.append(time.perf_counter() - started)
    return Stats.of(samples), explanation


def _cold(home: str, run: Run, samples: int) -> Stats:
    cairn = str(venv_script("cairn"))
    env = clean_env(CAIRN_HOME=home)
    argv = [cairn, "runs", "explain", run.run_id, "--json"]
    check = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise BenchError(f"cairn runs explain exited {check.returncode}: {check.stderr.strip()}")
    if json.loads(check.stdout).get("subject") != run.run_id:
        raise BenchError("cairn runs explain --json did not explain the run asked for")
    times = [time_process(argv, env, what="cairn runs explain") for _ in range(samples)]
    return Stats.of(times)


def run(options: argparse.Namespace) -> list[Verdict]:
    """Build the ledger and the two runs, time the explanations, print medians and verdicts."""
    header(
        f"explain: runs with {CALLS} tool calls in a ledger of {options.ledger_runs:,} "
        f"other runs, {options.repeat} warm explains, {options.cold} cold CLI processes"
    )
    verdicts: list[Verdict] = []
    with scratch_dir("explain") as home, scratch_app(home) as app:
        if options.ledger_runs > 0:
            agents = anyio.run(create_agents, app, None)
            built = populate(app, agents, options.ledger_runs)
            note(f"ledger: {built.runs:,} other runs built in {built.seconds:.1f} s")
        heavy = anyio.run(_fire_heavy, app)
        for slug, fired in heavy.items():
            events = len(get_run_events(app, SANDBOX, fired.run_id))
            stats, explanation = _warm(app, fired, options.repeat)
            codes = ", ".join(f.code for f in explanation.findings) or "none"
            note(
                f"{slug}: {len(fired.tool_calls)} calls "
                f"({sum(1 for c in fired.tool_calls if c.error)} errored), {events} events"
            )
            summary = explanation.summary
            shown = summary if len(summary) <= 150 else summary[:150] + "…"
            note(f"  explanation ({len(summary):,} chars): {shown}")
            note(f"  findings: {codes}")
            note(f"  explain_run, warm: {stats.line()}")
            verdicts.append(
                Verdict(
                    NAME,
                    f"explain_run, {slug} ({CALLS} calls), warm median {stats.median_ms:.2f} ms "
                    f"(target < {TARGET_WARM_MS:g} ms)",
                    stats.median_ms / TARGET_WARM_MS,
                    1.0,
                )
            )
        if options.cold > 0:
            app.close()  # the CLI processes open the ledger themselves
            cold = _cold(str(home), heavy["fifty-errors"], options.cold)
            note(f"cairn runs explain RUN_ID --json, cold process: {cold.line()}")
            verdicts.append(
                Verdict(
                    NAME,
                    f"cairn runs explain (fifty-errors), cold process median "
                    f"{cold.median_ms:.0f} ms (target < {TARGET_COLD_MS:g} ms)",
                    cold.median_ms / TARGET_COLD_MS,
                    1.0,
                )
            )
    for verdict in verdicts:
        note(verdict.line())
    return verdicts


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.explain``."""
    parser = argparse.ArgumentParser(prog="python -m bench explain", description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
