"""A real ``cairn serve``: list-runs latency, SSE follow latency, test-fire throughput.

The ledger is built first, in a scratch ``CAIRN_HOME``, with no server running: 100,000
runs (default) spread over four scripted agents by ``bench._ledger``; two ``streamer``
agents whose runs emit events spaced out in time; a ``blocker`` agent that holds a worker
for 0.3 s; an owner key (``services.access.create_key``). Then ``cairn serve`` (the console
script, a separate process) serves it on a free loopback port with ``--workers`` run
workers, and this process talks to it with httpx, as a client would. In that order:

1. List-runs latency, warm: ``GET …/agents/support/runs?limit=20`` and its second page
   (``before=`` the cursor), in alternating rounds with ``GET /healthz`` (the HTTP floor:
   no auth, no ledger) and ``GET …/agents/support`` (HTTP, authentication and one row);
   every answer's runs are checked. Then the server's CPU per call, each case alone. The
   same listing is first timed in process, before the server starts (the service, the page
   dict, the wire model's validation and JSON), so the difference can be attributed.
   No target: figures only.
2. Follow latency: a streamer is fired asynchronously (``POST …/fire``), then its run
   followed on ``GET …/runs/{id}/stream`` (SSE, parsed by the SDK's parser) to the ``end``
   event. A run plays ``--follow-turns`` turns, each ``--delay-s`` apart and with a tool
   call (2 text events, tool_call, tool_result), then an answer and ``finish``. An event's
   latency is the wall clock when this client has parsed it minus its ``created_at`` (the
   runner's clock when it emitted it; the same machine's clock). ``streamer`` waits
   ``--attach-s`` before its first turn so that the client is attached before the run
   emits anything; events emitted before the stream answered (history replayed on
   connect) would not measure following, so they are counted apart and left out.
   Four cases: one run at a time on an idle server (the brief's case); several at once;
   one at a time while ``--load-clients`` clients test-fire from another process; and one
   at a time that waits in the queue behind a ``blocker`` run on every worker (the
   ``eager-streamer``, without the attach delay, its stream opened after a random 0-0.2 s
   while it waits). Targets for each case but the parallel one: p50 at most 50 ms and p99
   at most 200 ms (verdict ratios: p50 / 50 ms and p99 / 200 ms).
3. Test-fire throughput: ``POST …/agents/support/test`` (synchronous: the answer is the
   finished run; through the worker pool; one builtin tool call) by N concurrent clients
   for ``--seconds`` each: runs/s, latency spread, and the CPU the server and this client
   used (on a small machine they compete for the same cores, so the server's CPU per run
   is the figure that carries over). No target: figures only.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import random
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
from httpx_sse import aconnect_sse

from bench._common import (
    BenchError,
    Verdict,
    clean_env,
    free_port,
    header,
    note,
    scratch_app,
    scratch_dir,
    venv_script,
)
from bench._ledger import SANDBOX, create_agents, populate
from cairn import wire
from cairn.domain.agents import ModelSettings
from cairn.services.access import create_key
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.runs import RunQuery, list_runs

NAME = "server"
HOST = "127.0.0.1"
PREFIX = f"/api/v1/sandboxes/{SANDBOX}"
STREAMER = "streamer"
EAGER = "eager-streamer"  # the same script without the attach delay: speaks as it starts
BLOCKER = "blocker"  # holds a worker for BLOCK_S, so that a fire after it waits in the queue
BLOCK_S = 0.3
POLL_WINDOW_S = 0.2  # a stream opened on a queued run looks again every 0.2 s (api/streams.py)
LISTED = "support"  # the agent whose runs are listed, and test-fired (after the listing)
FOLLOW_P50_MS = 50.0
FOLLOW_P99_MS = 200.0
LIMIT = 20
READY_TIMEOUT_S = 30.0
TOOL_NAME = "json_extract"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the ledger (100000)")
    parser.add_argument(
        "--follow-runs", type=int, default=10, help="runs followed one at a time (10)"
    )
    parser.add_argument(
        "--follow-parallel",
        type=int,
        default=4,
        help="then this many runs followed at once, three times (4; 0: skip)",
    )
    parser.add_argument(
        "--load-clients",
        type=int,
        default=16,
        help="then the runs followed again while this many clients test-fire (16; 0: skip)",
    )
    parser.add_argument(
        "--queued-rounds",
        type=int,
        default=10,
        help="then runs followed that wait in the queue behind busy workers (10; 0: skip)",
    )
    parser.add_argument(
        "--follow-turns", type=int, default=10, help="tool-calling turns per followed run (10)"
    )
    parser.add_argument(
        "--delay-s", type=float, default=0.02, help="model delay before each turn (0.02)"
    )
    parser.add_argument(
        "--attach-s",
        type=float,
        default=0.1,
        help="delay of the first turn, for the client to attach first (0.1)",
    )
    parser.add_argument(
        "--concurrency",
        default="1,4,16",
        help="concurrent test-fire clients, comma-separated (1,4,16)",
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="test-fire time per concurrency (3)"
    )
    parser.add_argument("--repeat", type=int, default=300, help="timed listings per case (300)")
    parser.add_argument(
        "--workers", type=int, default=8, help="the server's run workers (cairn serve: 8)"
    )


# --- figures -------------------------------------------------------------------------------


def _percentile(ms: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``ms``, linearly interpolated between ranks."""
    ordered = sorted(ms)
    if not ordered:
        raise BenchError("no samples to summarise")
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _spread(ms: Sequence[float]) -> str:
    """``median … ms  p90 … ms  p99 … ms  max … ms  (n=…)`` of samples in milliseconds."""
    return (
        f"median {statistics.median(ms):7.2f} ms  p90 {_percentile(ms, 90):7.2f} ms  "
        f"p99 {_percentile(ms, 99):7.2f} ms  max {max(ms):7.2f} ms  (n={len(ms)})"
    )


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``), else ``None``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the ledger and the server -------------------------------------------------------------


def _streamer_script(turns: int, delay_s: float, attach_s: float) -> dict[str, Any]:
    """``turns`` turns that each wait, say a sentence (2-3 text events) and call a tool,
    then a closing answer: about five events per turn, spaced ``delay_s`` apart."""
    call = {"name": TOOL_NAME, "arguments": {"document": "{{event}}", "path": "order_id"}}
    steps: list[dict[str, Any]] = [
        {
            "text": f"Step {i + 1}: looking order {{{{event.order_id}}}} up once more. ",
            "delay_s": attach_s if i == 0 else delay_s,
            "tool_calls": [call],
        }
        for i in range(turns)
    ]
    closing = {"text": "Order {{results.-1}} is on its way.", "delay_s": delay_s}
    return {"turns": [*steps, closing]}


async def _create_streamer(app: App, options: argparse.Namespace) -> None:
    await create_agent(
        app,
        SANDBOX,
        AgentSpec(
            slug=BLOCKER,
            system_prompt="You are the blocker agent. Take your time.",
            tool_sources=["builtin"],
            model_settings=ModelSettings(
                script={"turns": [{"text": "Done waiting.", "delay_s": BLOCK_S}]}
            ),
        ),
    )
    for slug, first_delay in ((STREAMER, options.attach_s), (EAGER, options.delay_s)):
        await create_agent(
            app,
            SANDBOX,
            AgentSpec(
                slug=slug,
                system_prompt="You are a streamer agent. Check the order step by step.",
                tool_sources=["builtin"],
                model_settings=ModelSettings(
                    script=_streamer_script(options.follow_turns, options.delay_s, first_delay),
                    max_turns=options.follow_turns + 1,
                ),
            ),
        )


@dataclass(frozen=True, slots=True)
class Ledger:
    """What the scratch ledger holds, for checking what the server answers."""

    token: str
    newest: str
    listed_runs: int
    total_runs: int


def _in_process_listing(app: App, repeat: int) -> None:
    """The listing the API serves, timed in this process: the service, then the page the
    operation builds, then the wire model's validation and JSON (as FastAPI does)."""
    query = RunQuery(agent_slug=LISTED, limit=LIMIT)
    service: list[float] = []
    page_dict: list[float] = []
    wire_json: list[float] = []
    for i in range(repeat + 10):
        t0 = time.perf_counter()
        found = list_runs(app, SANDBOX, query)
        t1 = time.perf_counter()
        page = {"runs": [run.to_dict() for run in found], "next_before": found[-1].run_id}
        t2 = time.perf_counter()
        wire.RunPage.model_validate(page).model_dump_json()
        t3 = time.perf_counter()
        if i >= 10:
            service.append((t1 - t0) * 1000)
            page_dict.append((t2 - t1) * 1000)
            wire_json.append((t3 - t2) * 1000)
    reader = type(app.reader).__name__
    note(f"in process, warm, over the same ledger ({reader}):")
    note(f"  services.runs.list_runs(limit=20)      {_spread(service)}")
    note(f"  + run.to_dict() x20 (the page dict)    {_spread(page_dict)}")
    note(f"  + wire.RunPage validate + dump_json    {_spread(wire_json)}")


def _build(home: Path, options: argparse.Namespace) -> Ledger:
    with scratch_app(home) as app:
        agents = anyio.run(create_agents, app, None)
        summary = populate(app, agents, options.runs)
        anyio.run(_create_streamer, app, options)
        _key, token = create_key(app, SANDBOX, "bench", "owner")
        note(
            f"ledger: {summary.runs:,} runs built in {summary.seconds:.1f} s "
            f"({LISTED}: {summary.per_agent[LISTED]:,}); agents {STREAMER!r} and {EAGER!r} "
            f"({options.follow_turns} tool turns {options.delay_s:g} s apart), {BLOCKER!r}; "
            "an owner key"
        )
        _in_process_listing(app, options.repeat)
        return Ledger(token, summary.newest[LISTED], summary.per_agent[LISTED], summary.runs)


@dataclass(frozen=True, slots=True)
class Server:
    """A running ``cairn serve``."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def cpu_s(self) -> float | None:
        """CPU seconds the server process has used so far."""
        return _cpu_s(self.process.pid)

    def log_tail(self) -> str:
        """The end of the server's output, for error messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return "(no log)"


def _wait_ready(server: Server) -> float:
    """Poll ``/healthz`` until it answers; seconds it took. Raises if the server died."""
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, timeout=1.0) as client:
        while time.perf_counter() - started < READY_TIMEOUT_S:
            if server.process.poll() is not None:
                raise BenchError(
                    f"cairn serve exited {server.process.returncode}:\n{server.log_tail()}"
                )
            try:
                if client.get("/healthz").status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise BenchError(f"cairn serve not ready after {READY_TIMEOUT_S:g} s:\n{server.log_tail()}")


@contextmanager
def _served(home: Path, workers: int) -> Iterator[Server]:
    """``cairn serve`` over the ledger in ``home`` on a free port; stopped (SIGTERM) after."""
    port = free_port(HOST)
    log_path = home / "serve.log"
    argv = [
        str(venv_script("cairn")),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            env=clean_env(CAIRN_HOME=str(home)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://{HOST}:{port}", process, log_path)
    try:
        ready = _wait_ready(server)
        note(f"server: {' '.join(argv[1:])} (pid {process.pid}), ready in {ready:.2f} s")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- 1. follow latency ---------------------------------------------------------------------


@dataclass(slots=True)
class Followed:
    """What one follower saw of one run."""

    run_id: str
    opened: float  # wall clock when the stream answered
    received: list[tuple[int, str, float, float]] = field(default_factory=list)
    # (seq, kind, created_at, received at), wall-clock seconds
    end: dict[str, Any] = field(default_factory=dict)

    def live(self) -> list[tuple[str, float]]:
        """(kind, latency ms) of the events emitted after the stream answered."""
        return [
            (k, (got - made) * 1000) for _, k, made, got in self.received if made >= self.opened
        ]

    def replayed(self) -> int:
        """Events emitted before the stream answered (history replayed on connect)."""
        return sum(1 for _, _, made, _ in self.received if made < self.opened)


def _timestamp(text: str) -> float:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # a ledger without time zones stores UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


async def _fire(client: httpx.AsyncClient, slug: str, order: str) -> str:
    """``POST …/fire``: the run id."""
    fired = await client.post(
        f"{PREFIX}/agents/{slug}/fire", json={"event_payload": {"order_id": order}}
    )
    if fired.status_code != 202:
        raise BenchError(f"fire answered {fired.status_code}: {fired.text}")
    run_id: str = fired.json()["run_id"]
    return run_id


async def _follow_one(client: httpx.AsyncClient, order: str, turns: int) -> Followed:
    """Fire the streamer, follow its run to the ``end`` event, and check what came."""
    return await _follow(client, await _fire(client, STREAMER, order), turns)


async def _follow(client: httpx.AsyncClient, run_id: str, turns: int) -> Followed:
    """Follow a streamer run to the ``end`` event, and check what came."""
    path = f"{PREFIX}/runs/{run_id}/stream"
    async with aconnect_sse(client, "GET", path) as source:
        followed = Followed(run_id, time.time())
        response = source.response
        if response.status_code != 200:
            await response.aread()
            raise BenchError(f"stream answered {response.status_code}: {response.text}")
        async for event in source.aiter_sse():
            now = time.time()
            if event.event == "end":
                followed.end = event.json()
                break
            data = event.json()
            followed.received.append(
                (int(data["seq"]), str(data["kind"]), _timestamp(data["created_at"]), now)
            )
    _check_followed(followed, turns)
    return followed


def _check_followed(followed: Followed, turns: int) -> None:
    seqs = [seq for seq, _, _, _ in followed.received]
    kinds = [kind for _, kind, _, _ in followed.received]
    where = f"followed run {followed.run_id}"
    if followed.end.get("status") != "succeeded":
        raise BenchError(f"{where} ended {followed.end or 'without an end event'}")
    if seqs != list(range(1, len(seqs) + 1)):
        raise BenchError(f"{where}: events out of order or missing: {seqs}")
    if kinds.count("tool_result") != turns or kinds[-1:] != ["finish"]:
        raise BenchError(
            f"{where}: {kinds.count('tool_result')} tool results (expected {turns}), "
            f"last event {kinds[-1:]}"
        )


async def _follow_runs(
    url: str, token: str, runs: int, parallel: int, turns: int, tag: str
) -> list[Followed]:
    """Follow ``runs`` runs, ``parallel`` at a time (after one untimed run to warm up)."""
    limits = httpx.Limits(max_connections=2 * parallel + 2)
    async with httpx.AsyncClient(
        base_url=url, headers=_auth(token), timeout=httpx.Timeout(30.0), limits=limits
    ) as client:
        await _follow_one(client, f"{tag}-warm-up", turns)
        followed: list[Followed] = []
        for batch in range(0, runs, parallel):

            async def follow(i: int) -> None:
                followed.append(await _follow_one(client, f"{tag}-{i}", turns))

            async with anyio.create_task_group() as group:
                for i in range(batch, min(batch + parallel, runs)):
                    group.start_soon(follow, i)
    return followed


async def _follow_queued(
    url: str, token: str, rounds: int, workers: int, turns: int, seed: int = 11
) -> list[Followed]:
    """Each round: occupy every worker with a ``blocker`` run, fire the eager streamer (it
    waits in the queue), open its stream after a random 0-``POLL_WINDOW_S`` wait (before the
    run starts), follow it."""
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=workers + 4)
    async with httpx.AsyncClient(
        base_url=url, headers=_auth(token), timeout=httpx.Timeout(30.0), limits=limits
    ) as client:
        followed: list[Followed] = []
        queued = 0
        for i in range(rounds):
            for w in range(workers):
                await _fire(client, BLOCKER, f"B-{i}-{w}")
            run_id = await _fire(client, EAGER, f"Q-{i}")
            await anyio.sleep(rng.uniform(0.0, POLL_WINDOW_S))
            status = (await client.get(f"{PREFIX}/runs/{run_id}")).json()["status"]
            queued += status == "queued"
            followed.append(await _follow(client, run_id, turns))
    note(f"(queued case: {queued} of {rounds} runs still queued just before their stream opened)")
    return followed


def _report_follow(label: str, runs: list[Followed]) -> list[float]:
    live = [pair for run in runs for pair in run.live()]
    replayed = sum(run.replayed() for run in runs)
    if not live:
        raise BenchError(f"{label}: no live events received")
    ms = [latency for _, latency in live]
    note(f"{label}: {len(runs)} runs, {len(live)} live events ({replayed} replayed, left out)")
    note(f"  all events       {_spread(ms)}")
    firsts = [run.live()[0][1] for run in runs if run.live()]
    note(f"  first of a run   {_spread(firsts)}")
    by_kind: dict[str, list[float]] = {}
    for kind, latency in live:
        by_kind.setdefault(kind, []).append(latency)
    for kind, values in sorted(by_kind.items()):
        note(f"  {kind:<16} {_spread(values)}")
    return ms


def _verdicts(label: str, ms: list[float]) -> list[Verdict]:
    p50, p99 = statistics.median(ms), _percentile(ms, 99)
    return [
        Verdict(
            NAME,
            f"follow p50 {p50:.2f} ms, {label} (target {FOLLOW_P50_MS:g} ms)",
            p50 / FOLLOW_P50_MS,
            1.0,
        ),
        Verdict(
            NAME,
            f"follow p99 {p99:.2f} ms, {label} (target {FOLLOW_P99_MS:g} ms)",
            p99 / FOLLOW_P99_MS,
            1.0,
        ),
    ]


def _load_process(url: str, token: str, clients: int, started: Any, stop: Any, out: Any) -> None:
    """In a child process: ``clients`` clients test-firing ``support`` until ``stop``."""
    anyio.run(_load, url, token, clients, started, stop, out)


async def _load(url: str, token: str, clients: int, started: Any, stop: Any, out: Any) -> None:
    path = f"{PREFIX}/agents/{LISTED}/test"
    limits = httpx.Limits(max_connections=clients)
    done = 0
    async with httpx.AsyncClient(
        base_url=url, headers=_auth(token), timeout=60.0, limits=limits
    ) as client:

        async def worker(w: int) -> None:
            nonlocal done
            i = 0
            while not stop.is_set():
                response = await client.post(
                    path, json={"event_payload": {"order_id": f"L-{w}-{i}"}}
                )
                _check_test_run(response)
                done += 1
                i += 1
                if done == 2 * clients:
                    started.set()

        begun = time.perf_counter()
        async with anyio.create_task_group() as group:
            for w in range(clients):
                group.start_soon(worker, w)
    out.put((done, time.perf_counter() - begun))


def _follow_loaded(server: Server, ledger: Ledger, options: argparse.Namespace) -> list[Followed]:
    """Follow runs one at a time while a child process keeps the server's workers busy."""
    ctx = multiprocessing.get_context("spawn")
    started, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    clients = options.load_clients
    loader = ctx.Process(
        target=_load_process,
        args=(server.url, ledger.token, clients, started, stop, out),
        daemon=True,
    )
    loader.start()
    try:
        deadline = time.perf_counter() + READY_TIMEOUT_S
        while not started.wait(0.1):
            if not loader.is_alive() or time.perf_counter() > deadline:
                raise BenchError("the test-fire load did not get going (see the errors above)")
        cpu = server.cpu_s()
        begun = time.perf_counter()
        followed = anyio.run(
            _follow_runs,
            server.url,
            ledger.token,
            options.follow_runs,
            1,
            options.follow_turns,
            "L",
        )
        elapsed = time.perf_counter() - begun
        used = server.cpu_s()
    finally:
        stop.set()
        try:  # read the result before joining: a child with queued data does not exit
            result: tuple[int, float] | None = out.get(
                timeout=READY_TIMEOUT_S if loader.is_alive() else 1.0
            )
        except queue.Empty:
            result = None
        loader.join(READY_TIMEOUT_S)
        if loader.is_alive():
            loader.kill()
    if result is None or loader.exitcode != 0:
        raise BenchError(f"the test-fire load process exited {loader.exitcode}")
    fired, seconds = result
    load = (
        "" if cpu is None or used is None else f"; server CPU {100 * (used - cpu) / elapsed:.0f}%"
    )
    note(
        f"(load: {clients} clients test-firing {LISTED!r} from another process, "
        f"{fired / seconds:.0f} runs/s{load})"
    )
    return followed


def _follow_latency(server: Server, ledger: Ledger, options: argparse.Namespace) -> list[Verdict]:
    header(
        f"server 2/3: follow latency (emitted -> parsed by an SSE client), {STREAMER!r} runs of "
        f"{options.follow_turns} tool turns {options.delay_s:g} s apart, {options.workers} workers"
    )
    started = time.perf_counter()
    url, token, runs, turns = server.url, ledger.token, options.follow_runs, options.follow_turns
    one = anyio.run(_follow_runs, url, token, runs, 1, turns, "F")
    many: list[Followed] = []
    if options.follow_parallel > 1:
        many = anyio.run(
            _follow_runs,
            url,
            token,
            3 * options.follow_parallel,
            options.follow_parallel,
            turns,
            "P",
        )
    loaded = _follow_loaded(server, ledger, options) if options.load_clients > 0 else []
    queued: list[Followed] = []
    if options.queued_rounds > 0:
        queued = anyio.run(
            _follow_queued, url, token, options.queued_rounds, options.workers, turns
        )
    note(f"({time.perf_counter() - started:.1f} s; every run checked: succeeded, events 1..n)")
    verdicts = _verdicts(
        "idle server, one run at a time", _report_follow("one run at a time, idle server", one)
    )
    if many:
        _report_follow(f"{options.follow_parallel} runs at once (x3), idle server", many)
    if loaded:
        label = f"while {options.load_clients} clients test-fire"
        verdicts += _verdicts(label, _report_follow(f"one run at a time {label}", loaded))
    if queued:
        label = f"queued behind {options.workers} runs of {BLOCK_S:g} s"
        verdicts += _verdicts(label, _report_follow(f"one run at a time, {label}", queued))
    for verdict in verdicts:
        note(verdict.line())
    return verdicts


# --- 2. test-fire throughput ---------------------------------------------------------------


def _check_test_run(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise BenchError(f"test fire answered {response.status_code}: {response.text[:300]}")
    run = response.json()
    calls = run.get("tool_calls") or []
    if run.get("status") != "succeeded" or len(calls) != 1 or calls[0].get("name") != TOOL_NAME:
        raise BenchError(
            f"test run {run.get('run_id')} is {run.get('status')} ({run.get('error_message')}) "
            f"with {len(calls)} tool calls; expected succeeded with one {TOOL_NAME} call"
        )


@dataclass(frozen=True, slots=True)
class Level:
    """One concurrency level's result."""

    concurrency: int
    runs: int
    seconds: float
    latencies_ms: list[float]
    client_cpu_s: float
    server_cpu_s: float | None


async def _fire_level(server: Server, token: str, concurrency: int, seconds: float) -> Level:
    path = f"{PREFIX}/agents/{LISTED}/test"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=server.url, headers=_auth(token), timeout=60.0, limits=limits
    ) as client:

        async def fire(tag: str) -> float:
            started = time.perf_counter()
            response = await client.post(path, json={"event_payload": {"order_id": tag}})
            elapsed = time.perf_counter() - started
            _check_test_run(response)
            return elapsed

        async with anyio.create_task_group() as group:  # open the connections, warm up
            for w in range(concurrency):
                group.start_soon(fire, f"W-{concurrency}-{w}")
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                latencies.append(await fire(f"T-{concurrency}-{w}-{i}") * 1000)
                i += 1

        server_cpu = server.cpu_s()
        client_cpu = time.process_time()
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for w in range(concurrency):
                group.start_soon(worker, w)
        elapsed = time.perf_counter() - started
        client_used = time.process_time() - client_cpu
        server_now = server.cpu_s()
    server_used = None if server_cpu is None or server_now is None else server_now - server_cpu
    return Level(concurrency, len(latencies), elapsed, latencies, client_used, server_used)


def _throughput(server: Server, ledger: Ledger, options: argparse.Namespace) -> None:
    levels = [int(part) for part in str(options.concurrency).split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise BenchError(f"--concurrency must list whole numbers >= 1, not {options.concurrency!r}")
    header(
        f"server 3/3: synchronous test fires (POST .../agents/{LISTED}/test, scripted, one "
        f"{TOOL_NAME} call), {options.seconds:g} s per level, {options.workers} run workers"
    )
    for concurrency in levels:
        level = anyio.run(_fire_level, server, ledger.token, concurrency, options.seconds)
        rate = level.runs / level.seconds
        server_cpu = (
            f"{100 * level.server_cpu_s / level.seconds:4.0f}% "
            f"({1000 * level.server_cpu_s / level.runs:.2f} ms CPU per run)"
            if level.server_cpu_s is not None
            else "n/a"
        )
        note(
            f"{concurrency:>3} clients: {rate:7.1f} runs/s ({level.runs} runs in "
            f"{level.seconds:.2f} s); CPU: server {server_cpu}, this client "
            f"{100 * level.client_cpu_s / level.seconds:4.0f}%"
        )
        note(f"             latency {_spread(level.latencies_ms)}")
    note("(every response checked: succeeded with one tool call)")


# --- 3. list-runs latency ------------------------------------------------------------------


def _check_page(page: dict[str, Any], ledger: Ledger, before: str | None) -> None:
    found = page["runs"]
    ids = [run["run_id"] for run in found]
    if len(found) != LIMIT or any(run["agent_slug"] != LISTED for run in found):
        raise BenchError(f"expected {LIMIT} runs of {LISTED!r}, got {len(found)}")
    if ids != sorted(ids, reverse=True) or page["next_before"] != ids[-1]:
        raise BenchError("the runs are not newest first, or next_before is not the last one")
    if before is None and ids[0] != ledger.newest:
        raise BenchError(f"the newest run of {LISTED!r} ({ledger.newest}) is not first")
    if before is not None and ids[0] >= before:
        raise BenchError("page 2 does not continue after the cursor")


def _listing(server: Server, ledger: Ledger, options: argparse.Namespace) -> None:
    header(
        f"server 1/3: list-runs latency through the API, warm, over {ledger.total_runs:,} runs "
        f"({LISTED}: {ledger.listed_runs:,}), {options.repeat} calls per case, alternating"
    )
    listing = f"{PREFIX}/agents/{LISTED}/runs"
    with httpx.Client(base_url=server.url, headers=_auth(ledger.token), timeout=30.0) as client:
        first = client.get(listing, params={"limit": LIMIT})
        if first.status_code != 200:
            raise BenchError(f"list runs answered {first.status_code}: {first.text[:300]}")
        _check_page(first.json(), ledger, None)
        cursor = first.json()["next_before"]
        _check_page(
            client.get(listing, params={"limit": LIMIT, "before": cursor}).json(), ledger, cursor
        )
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("GET /healthz (no auth, no ledger)", "/healthz", {}),
            (f"GET agents/{LISTED} (auth + one row)", f"{PREFIX}/agents/{LISTED}", {}),
            (f"GET agents/{LISTED}/runs?limit=20", listing, {"limit": LIMIT}),
            ("  same, page 2 (before=cursor)", listing, {"limit": LIMIT, "before": cursor}),
        ]
        samples: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        sizes: dict[str, int] = {}
        for round_ in range(options.repeat + 10):
            for name, path, params in cases:
                started = time.perf_counter()
                response = client.get(path, params=params)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise BenchError(f"{name} answered {response.status_code}")
                sizes[name] = len(response.content)
                if round_ >= 10:
                    samples[name].append(elapsed * 1000)
        cpu_ms = {
            name: _server_cpu_ms(server, client, path, params) for name, path, params in cases
        }
    note("latency seen by this client, then the server's CPU per call (a block of calls alone):")
    for name, _, _ in cases:
        cpu = "n/a" if cpu_ms[name] is None else f"{cpu_ms[name]:.2f} ms"
        note(f"{name:<38} {_spread(samples[name])}  {sizes[name]:>6} B  server CPU {cpu}")


def _server_cpu_ms(
    server: Server, client: httpx.Client, path: str, params: dict[str, Any], calls: int = 200
) -> float | None:
    """Server CPU milliseconds per call, over ``calls`` calls in a row (clock ticks of 10 ms
    over a few hundred ms of CPU: a few per cent)."""
    before = server.cpu_s()
    for _ in range(calls):
        client.get(path, params=params)
    after = server.cpu_s()
    return None if before is None or after is None else (after - before) * 1000 / calls


# --- the benchmark -------------------------------------------------------------------------


def run(options: argparse.Namespace) -> list[Verdict]:
    """Build the ledger, start ``cairn serve`` on it, measure the three things, stop it."""
    header(f"server: cairn serve over a {options.runs:,}-run SQLite ledger, measured over HTTP")
    with scratch_dir("server") as home:
        ledger = _build(home, options)
        with _served(home, options.workers) as server:
            _listing(server, ledger, options)
            verdicts = _follow_latency(server, ledger, options)
            _throughput(server, ledger, options)
            if server.process.poll() is not None:
                raise BenchError(f"cairn serve died during the benchmark:\n{server.log_tail()}")
    return verdicts


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.server``."""
    parser = argparse.ArgumentParser(prog="python -m bench server", description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
