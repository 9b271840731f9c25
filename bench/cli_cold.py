"""A cold ``cairn agent runs support --limit 20 --json`` vs a cold ``llm logs -n 20``.

Cairn: a ledger of 100,000 runs (default) spread over four agents in a scratch
``CAIRN_HOME``; each sample is a whole new process of the ``cairn`` console script with
its output sent to /dev/null (exit code checked; one more run checks the JSON holds the 20
newest runs of ``support``, newest first).

Peer: ``llm logs -n 20`` from the ``llm`` package over a scratch ``LLM_USER_PATH`` where
``llm -m echo`` (the ``llm-echo`` plugin) logged a few prompts first. The two commands
alternate, so both see the same machine state. The target is Cairn's median at most 1/3
of the peer's.

Then the cold time is split: interpreter start-up, imports (``python -X importtime``,
grouped by top-level package), and the in-process phases of the command (settings, opening
the store, the query, the JSON), each measured cold in new processes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

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
from bench._ledger import create_agents, populate

NAME = "cli_cold"
TARGET = 1 / 3
LIMIT = 20

# Runs inside a fresh interpreter: times each phase of ``cairn agent runs`` cold.
_PHASES = """
import json, time
t0 = time.perf_counter()
import click
t1 = time.perf_counter()
from cairn.config import load_settings
from cairn.services.app import App
from cairn.services.runs import RunQuery, list_runs
t2 = time.perf_counter()
app = App(load_settings())
store = app.store
t3 = time.perf_counter()
found = list_runs(app, "default", RunQuery(agent_slug="support", limit=20))
t4 = time.perf_counter()
text = json.dumps([run.to_dict() for run in found], default=str)
t5 = time.perf_counter()
list_runs(app, "default", RunQuery(agent_slug="support", limit=20))
t6 = time.perf_counter()
print(json.dumps({
    "import click": t1 - t0,
    "import cairn services (sqlalchemy, domain)": t2 - t1,
    "load settings + open store (one revision query)": t3 - t2,
    "list_runs, first in process": t4 - t3,
    "to_dict + json.dumps of 20 runs": t5 - t4,
    "list_runs, second in process (warm)": t6 - t5,
}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the ledger (100000)")
    parser.add_argument("--repeat", type=int, default=15, help="timed processes per side (15)")
    parser.add_argument("--prompts", type=int, default=5, help="prompts logged in llm first (5)")


def _build_ledger(home: Path, total: int) -> None:
    with scratch_app(home) as app:
        agents = anyio.run(create_agents, app, None)
        summary = populate(app, agents, total)
    note(
        f"ledger: {summary.runs:,} runs in {summary.seconds:.1f} s "
        f"({', '.join(f'{k} {v:,}' for k, v in summary.per_agent.items())})"
    )


def _check_cairn_output(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    found = json.loads(done.stdout)
    ids = [run["run_id"] for run in found]
    if len(found) != LIMIT or any(run["agent_slug"] != "support" for run in found):
        raise BenchError(f"expected {LIMIT} runs of 'support', got {len(found)}")
    if ids != sorted(ids, reverse=True):
        raise BenchError("the runs are not newest first")


def _log_prompts(llm: Path, env: dict[str, str], count: int) -> None:
    for i in range(count):
        subprocess.run(
            [str(llm), "-m", "echo", f"hi {i}"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=True,
        )


def _import_split(argv: list[str], env: dict[str, str]) -> None:
    """``python -X importtime`` of the real command: self time grouped by top-level package,
    and for each heavy package the cumulative cost of its first import and who imported it."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    entries: list[tuple[int, int, int, str]] = []  # depth, self us, cumulative us, module
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        raw = parts[2]
        depth = (len(raw) - len(raw.lstrip()) - 1) // 2
        entries.append((depth, int(parts[0]), int(parts[1]), raw.strip()))
    by_package: defaultdict[str, int] = defaultdict(int)
    for _, self_us, _, name in entries:
        by_package[name.split(".")[0]] += self_us
    total_ms = sum(by_package.values()) / 1000
    note(f"imports: {total_ms:.0f} ms of self time under -X importtime (which inflates it a bit)")
    note("  self ms  first import cum. ms  package (outermost module <- imported by)")
    for package, us in sorted(by_package.items(), key=lambda kv: -kv[1])[:10]:
        # importtime lists a module after its children, so a module's importer is the next
        # entry that sits shallower. The package's first import is the outermost module of
        # the package above its earliest entry.
        index = next(i for i, e in enumerate(entries) if e[3].split(".")[0] == package)
        importer = "the script"
        for later in range(index + 1, len(entries)):
            if entries[later][0] < entries[index][0]:
                if entries[later][3].split(".")[0] != package:
                    importer = entries[later][3]
                    break
                index = later
        _, _, cumulative_us, name = entries[index]
        note(f"  {us / 1000:7.1f}  {cumulative_us / 1000:20.1f}  {package} ({name} <- {importer})")


def _phase_split(env: dict[str, str], repeat: int) -> None:
    samples: defaultdict[str, list[float]] = defaultdict(list)
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", _PHASES], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"phase probe failed: {done.stderr.strip()}")
        for phase, seconds in json.loads(done.stdout).items():
            samples[phase].append(seconds)
    note(f"phases of the command, cold, median of {repeat} processes:")
    for phase, values in samples.items():
        note(f"  {Stats.of(values).median_ms:7.2f} ms  {phase}")


def run(options: argparse.Namespace) -> list[Verdict]:
    """Build the ledger, time both commands, print the verdict and the split."""
    repeat: int = options.repeat
    header(f"cli_cold: {repeat} cold processes per side, ledger of {options.runs:,} runs")
    cairn = venv_script("cairn")
    llm = venv_script("llm")
    with scratch_dir("cli") as home, tempfile.TemporaryDirectory(prefix="llm-bench-") as llm_home:
        _build_ledger(home, options.runs)
        cairn_env = clean_env(CAIRN_HOME=str(home))
        llm_env = dict(os.environ, LLM_USER_PATH=llm_home)
        cairn_argv = [str(cairn), "agent", "runs", "support", "--limit", str(LIMIT), "--json"]
        llm_argv = [str(llm), "logs", "-n", str(LIMIT)]
        _log_prompts(llm, llm_env, options.prompts)
        _check_cairn_output(cairn_argv, cairn_env)
        time_process(llm_argv, llm_env, what="llm logs")  # warm the page cache once

        cairn_times: list[float] = []
        llm_times: list[float] = []
        for _ in range(repeat):
            cairn_times.append(time_process(cairn_argv, cairn_env, what="cairn agent runs"))
            llm_times.append(time_process(llm_argv, llm_env, what="llm logs"))
        cairn_stats = Stats.of(cairn_times)
        llm_stats = Stats.of(llm_times)
        note(f"$ CAIRN_HOME={home} {' '.join(cairn_argv)} > /dev/null")
        note(f"cairn agent runs   {cairn_stats.line()}")
        note(f"$ LLM_USER_PATH={llm_home} {' '.join(llm_argv)} > /dev/null")
        note(f"llm logs           {llm_stats.line()}")
        ratio = cairn_stats.median_ms / llm_stats.median_ms
        verdict = Verdict(
            NAME,
            f"cairn {cairn_stats.median_ms:.1f} ms / llm {llm_stats.median_ms:.1f} ms",
            ratio,
            TARGET,
        )
        note(verdict.line())

        header("cli_cold: where a cold cairn agent runs spends its time")
        bare = Stats.of(
            [
                time_process([sys.executable, "-c", "pass"], cairn_env, what="python -c pass")
                for _ in range(repeat)
            ]
        )
        note(f"interpreter start-up (python -c pass): median {bare.median_ms:.1f} ms")
        _import_split(cairn_argv, cairn_env)
        _phase_split(cairn_env, max(5, repeat // 3))
    return [verdict]


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.cli_cold``."""
    parser = argparse.ArgumentParser(prog="python -m bench cli_cold", description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
