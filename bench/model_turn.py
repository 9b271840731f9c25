"""Cairn's own overhead per model turn on a real vendor backend, beside the SDK call itself.

An agent on the ``openai`` backend (the official SDK) runs against the local
Chat-Completions server of the test suite (``tests/fakes/openai_server.py``: real SSE over
loopback). Each run has two turns: a tool call (builtin ``clock_now``) then an answer.
The backend is wrapped (registered as a plugin backend, the public seam) to time each
``stream()`` from its first line to its ``TurnEnd``: that is the time in the SDK and the
server. Everything else in the run, minus the tool call's own time, is Cairn's: resolving
tools, building messages, recording events, and the two ledger writes. Reported per turn;
the issue's target is < 1 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio

from bench._common import BenchError, Stats, Verdict, header, note, scratch_app, scratch_dir
from cairn.domain.agents import ModelSettings
from cairn.models.backends import model_backends
from cairn.models.base import Credentials, ModelEvent, ModelRequest, TurnEnd
from cairn.runner.engine import Runner
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.sources import available_sources

NAME = "model_turn"
TARGET_MS = 1.0
TURNS = 2


class _Timed:
    """Wraps a backend; adds each turn's time inside the SDK to ``spent``."""

    def __init__(self, inner: Any, spent: list[float]) -> None:
        self.inner = inner
        self.name = inner.name
        self.spent = spent

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        started = time.perf_counter()
        async for event in self.inner.stream(request):
            if isinstance(event, TurnEnd):
                self.spent.append(time.perf_counter() - started)
            yield event


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--runs", type=int, default=200, help="timed runs (200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed runs first (20)")


def run(options: argparse.Namespace) -> list[Verdict]:
    """Fire the runs against the local server and split their time."""
    from cairn.models.openai import OpenAIBackend
    from tests.fakes.openai_server import completion, serve_openai, text, tool_call

    header(f"{NAME}: {options.runs} two-turn runs on the openai backend (local server)")
    spent: list[float] = []

    def timed_openai(settings: ModelSettings, credentials: Credentials) -> _Timed:
        return _Timed(OpenAIBackend(settings, credentials), spent)

    model_backends.register("openai_timed", timed_openai)
    try:
        with serve_openai() as fake, scratch_dir("model-turn") as home, scratch_app(home) as app:
            overheads = anyio.run(_measure, app, fake, options, spent, completion, text, tool_call)
    finally:
        model_backends.unregister("openai_timed")
    stats = Stats.of(overheads)
    note(f"Cairn overhead per turn  {stats.line()}")
    return [
        Verdict(
            NAME,
            f"Cairn time per model turn, median {stats.median_ms:.3f} ms (target < 1 ms)",
            stats.median_ms,
            TARGET_MS,
        )
    ]


async def _measure(
    app: Any, fake: Any, options: argparse.Namespace, spent: list[float], *helpers: Any
) -> list[float]:
    completion, text, tool_call = helpers
    from cairn.models.base import EnvCredentials

    agent, _ = await create_agent(
        app,
        "default",
        AgentSpec(
            slug="timed",
            system_prompt="Tell the time.",
            tool_sources=["builtin"],
            tool_allowlist=["clock_now"],
            model_settings=ModelSettings(
                backend="openai_timed", model="gpt-5.5-mini", base_url=fake.url
            ),
        ),
    )
    runner = Runner(
        app.store,
        app.tool_context,
        credentials=lambda _s: EnvCredentials({"openai_timed": "sk-local"}),
    )
    available = available_sources(app, "default")
    overheads: list[float] = []
    sdk_share: list[float] = []
    for index in range(options.warmup + options.runs):
        fake.queue(
            completion(tool_call("call_1", "clock_now", {})),
            completion(text("It is ", "now."), prompt_tokens=30, completion_tokens=4),
        )
        spent.clear()
        started = time.perf_counter()
        done = await runner.fire(agent, {"n": index}, available, kind="test")
        total = time.perf_counter() - started
        if done.status != "succeeded" or len(spent) != TURNS:
            raise BenchError(f"run {done.run_id} ended {done.status}: {done.error_message}")
        tool_s = sum(call.duration_ms for call in done.tool_calls) / 1000
        if index >= options.warmup:
            overheads.append((total - sum(spent) - tool_s) / TURNS)
            sdk_share.append(sum(spent) / TURNS)
    note(
        f"time in the SDK + local server per turn: median "
        f"{statistics.median(sdk_share) * 1000:.3f} ms"
    )
    return overheads


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.model_turn``."""
    parser = argparse.ArgumentParser(prog="python -m bench model_turn", description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0
