"""Fired runs per second end to end (signed webhook → run finished) under each execution
set-up, beside the in-process runner's own rate measured in the same invocation, and the
wait from event to run start at half the sustained rate.

Each set-up is real processes on a scratch ledger: ``cairn serve`` with its embedded
workers on SQLite; ``cairn serve --no-workers`` with one and with two ``cairn worker``
processes (on SQLite, and on PostgreSQL when the local server answers); and on PostgreSQL
the ``procrastinate`` backend (``CAIRN_EXECUTOR=procrastinate``) with one and two
``cairn worker`` processes behind ``cairn serve --no-workers``. The load is N
signed webhook deliveries at C connections to one trigger of a scripted agent that makes
one builtin tool call (``json_extract``) and answers. The burst is sent by ``wrk`` (each event
signed in advance, sent once; ``--load httpx`` sends it from an httpx client in this
process instead, which retries a 503 after its Retry-After as a webhook sender does, and
itself takes about a core at these rates); "dropped" counts accepted deliveries whose run
did not complete (the target is zero).
"CPU per run" is the user+system time of the set-up's Cairn processes (not PostgreSQL's)
over the saturating burst, divided by its runs: a figure a loaded machine bends less.

Targets (issue #12): embedded ≥ 50% of the in-process runner's rate; ≥ 3x n8n's
executions/s on this machine (n8n measured 108-185/s here; n8n is not installed, so the
top of that range is the reference); event → start p99 < 50 ms at half load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
from sqlalchemy import create_engine, text

from bench._common import (
    BenchError,
    Verdict,
    clean_env,
    free_port,
    header,
    note,
    scratch_app,
    scratch_dir,
    sqlite_url,
    venv_script,
)
from bench._ledger import SANDBOX, create_agents
from cairn.config import Settings
from cairn.services.app import App
from cairn.services.sources import available_sources
from cairn.services.triggers import create_trigger
from cairn.services.webhooks import NewWebhook, add_webhook_source, sign

NAME = "throughput"
N8N_REFERENCE_PER_S = 185.0
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench throughput``."""
    parser.add_argument("--events", type=int, default=3000, help="deliveries per set-up")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=8, help="slots per worker process")
    parser.add_argument("--runner-runs", type=int, default=500)
    parser.add_argument("--latency-s", type=float, default=5.0, help="half-load phase length")
    parser.add_argument(
        "--load",
        choices=["wrk", "httpx"],
        default="wrk",
        help="the burst's sender: wrk (C, pre-signed events; the default) or an httpx client "
        "in this process (which takes about a core of its own at these rates)",
    )
    parser.add_argument("--no-postgres", action="store_true")


@dataclass
class Setup:
    """A scratch ledger served by real processes."""

    label: str
    url: str
    api: str
    hook: NewWebhook
    processes: list[subprocess.Popen[bytes]]


@dataclass
class Result:
    """One set-up's figures."""

    label: str
    rate: float
    accepted: int
    refused: int
    dropped: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_ms_per_run: float | None = None


def run(options: argparse.Namespace) -> list[Verdict]:
    """Measure every set-up and compare."""
    header("throughput: fired runs/s end to end, signed webhook → run finished")
    runner_rate = _runner_rate(options.runner_runs)
    note(f"in-process runner alone:  {runner_rate:8.1f} persisted runs/s (SQLite)")
    plans: list[tuple[str, str, int, str]] = [
        ("embedded, SQLite (serve + in-process workers)", "sqlite", 0, "embedded"),
        ("embedded, SQLite, serve --no-workers + 1 worker process", "sqlite", 1, "embedded"),
        ("embedded, SQLite, serve --no-workers + 2 worker processes", "sqlite", 2, "embedded"),
    ]
    if not options.no_postgres and _postgres_up():
        plans += [
            ("embedded, PostgreSQL, serve + in-process workers", "postgresql", 0, "embedded"),
            ("embedded, PostgreSQL, --no-workers + 1 worker process", "postgresql", 1, "embedded"),
            (
                "embedded, PostgreSQL, --no-workers + 2 worker processes",
                "postgresql",
                2,
                "embedded",
            ),
            (
                "procrastinate, PostgreSQL, --no-workers + 1 worker process",
                "postgresql",
                1,
                "procrastinate",
            ),
            (
                "procrastinate, PostgreSQL, --no-workers + 2 worker processes",
                "postgresql",
                2,
                "procrastinate",
            ),
        ]
    else:
        why = "--no-postgres" if options.no_postgres else "no local server answers"
        note(f"PostgreSQL set-ups (embedded and procrastinate): skipped ({why})")
    results: list[Result] = []
    for label, backend, worker_processes, executor in plans:
        with _setup(label, backend, worker_processes, options.workers, executor) as setup:
            result = anyio.run(_measure, setup, options)
        results.append(result)
        latency = (
            f"; event→start at half load p50 {result.p50_ms:.1f} ms p99 {result.p99_ms:.1f} ms"
            if result.p50_ms is not None and result.p99_ms is not None
            else ""
        )
        cpu = f", CPU {result.cpu_ms_per_run:.1f} ms/run" if result.cpu_ms_per_run else ""
        refusals = "not accepted" if options.load == "wrk" else "refusals retried"
        note(
            f"{label}: {result.rate:7.1f} runs/s ({result.accepted} accepted, "
            f"{result.refused} {refusals}, {result.dropped} dropped{cpu}){latency}"
        )
    note("n8n reference on this machine (issue #12): 108-185 executions/s")
    embedded = results[0]
    verdicts = [
        Verdict(NAME, "in-process runner rate / embedded rate", runner_rate / embedded.rate, 2.0),
        Verdict(
            NAME,
            f"3 x n8n's {N8N_REFERENCE_PER_S:g}/s / embedded rate",
            3 * N8N_REFERENCE_PER_S / embedded.rate,
            1.0,
        ),
        Verdict(NAME, "dropped events (any set-up)", float(sum(r.dropped for r in results)), 0.0),
    ]
    if embedded.p99_ms is not None:
        verdicts.append(
            Verdict(NAME, "event→start p99 at half load / 50 ms", embedded.p99_ms / 50, 1)
        )
    return verdicts


def _runner_rate(count: int) -> float:
    """Persisted runs/s of ``Runner.fire`` in one loop, the agent the load fires."""
    with scratch_dir("runner") as home, scratch_app(home) as app:

        async def fire_all() -> float:
            agent = (await create_agents(app, ["triage"]))["triage"]
            available = available_sources(app, SANDBOX)
            for _ in range(20):
                await app.runner.fire(agent, {"order_id": "A-1"}, available, kind="test")
            started = time.perf_counter()
            for n in range(count):
                await app.runner.fire(agent, {"order_id": f"A-{n}"}, available, kind="test")
            return count / (time.perf_counter() - started)

        return anyio.run(fire_all)


def _postgres_up() -> bool:
    try:
        engine = create_engine(
            POSTGRES_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
            isolation_level="AUTOCOMMIT",
        )
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@contextmanager
def _scratch_postgres() -> Iterator[str]:
    engine = create_engine(
        POSTGRES_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
        isolation_level="AUTOCOMMIT",
    )
    name = f"cairn_bench_{int(time.time() * 1000)}"
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextmanager
def _setup(
    label: str, backend: str, worker_processes: int, slots: int, executor: str = "embedded"
) -> Iterator[Setup]:
    scratch_pg = _scratch_postgres() if backend == "postgresql" else _nothing()
    with scratch_dir("throughput") as home, scratch_pg as pg_url:
        url = pg_url or sqlite_url(home)
        app = App(_settings(home, url))
        try:
            anyio.run(create_agents, app, ["triage"])
            hook = add_webhook_source(app, SANDBOX, "load")
            create_trigger(app, SANDBOX, "triage", hook.source.source_id)
        finally:
            app.close()
        env = clean_env(CAIRN_HOME=str(home), CAIRN_DATABASE_URL=url, CAIRN_EXECUTOR=executor)
        port = free_port()
        serve = [str(venv_script("cairn")), "serve", "--port", str(port)]
        serve += ["--no-workers"] if worker_processes else ["--workers", str(slots)]
        log = (home / "serve.log").open("wb")
        processes = [subprocess.Popen(serve, env=env, stdout=log, stderr=subprocess.STDOUT)]
        for _ in range(worker_processes):
            processes.append(
                subprocess.Popen(
                    [str(venv_script("cairn")), "worker", "--concurrency", str(slots)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        try:
            _wait_ready(f"http://127.0.0.1:{port}", processes[0])
            yield Setup(label, url, f"http://127.0.0.1:{port}", hook, processes)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
            log.close()


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _settings(home: Path, url: str) -> Settings:
    return Settings(home=home, database_url=url)


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"cairn serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise BenchError("cairn serve did not come up within 60 s")


async def _measure(setup: Setup, options: argparse.Namespace) -> Result:
    """Saturating burst (the rate), then a paced half-load phase (the start latency)."""
    limits = httpx.Limits(max_connections=options.connections)
    async with httpx.AsyncClient(base_url=setup.api, limits=limits, timeout=60) as http:
        await _deliver(http, setup, "warm", 50, options.connections)
        await _wait_drained(setup, 50)
        started = time.perf_counter()
        cpu_before = _cpu_s(setup.processes)
        if options.load == "wrk":
            accepted, refused = await anyio.to_thread.run_sync(_burst_with_wrk, setup, options)
        else:
            accepted, refused = await _deliver(
                http, setup, "burst", options.events, options.connections
            )
        await _wait_drained(setup, 50 + accepted)
        rate = accepted / (time.perf_counter() - started)
        cpu_ms_per_run = (_cpu_s(setup.processes) - cpu_before) * 1000 / max(1, accepted)
        dropped = _dropped(setup)
        p50 = p99 = None
        if options.latency_s > 0:
            half = rate / 2
            count = max(20, int(half * options.latency_s))
            before = 50 + accepted
            paced_accepted, _ = await _paced(http, setup, count, half)
            await _wait_drained(setup, before + paced_accepted)
            waits = _start_waits(setup, "paced-")
            waits.sort()
            p50 = statistics.median(waits)
            p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
            dropped = _dropped(setup)
        return Result(setup.label, rate, accepted, refused, dropped, p50, p99, cpu_ms_per_run)


def _cpu_s(processes: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU seconds of ``processes`` so far (Linux ``/proc``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for process in processes:
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


async def _post(http: httpx.AsyncClient, setup: Setup, sender_id: str) -> httpx.Response:
    body = json.dumps(
        {"type": "order.created", "id": sender_id, "payload": {"order_id": sender_id}}
    ).encode()
    stamp = str(int(time.time()))
    return await http.post(
        setup.hook.path,
        content=body,
        headers={
            "X-Cairn-Timestamp": stamp,
            "X-Cairn-Signature": sign(setup.hook.secret or "", stamp, body),
            "Content-Type": "application/json",
        },
    )


async def _send_until_accepted(http: httpx.AsyncClient, setup: Setup, sender_id: str) -> int:
    """Deliver; on 503 wait Retry-After and resend, and resend when the connection drops
    (what a webhook sender does; a resent event that was stored is answered 200)."""
    refusals = dropped = 0
    while True:
        try:
            response = await _post(http, setup, sender_id)
        except httpx.TransportError:
            # An idle keep-alive connection the server closed just as it was reused.
            dropped += 1
            if dropped > 3:
                raise
            continue
        if response.status_code in (200, 202):
            return refusals
        if response.status_code != 503:
            raise BenchError(f"delivery answered {response.status_code}: {response.text[:200]}")
        refusals += 1
        await anyio.sleep(float(response.headers.get("Retry-After", "1")))


async def _deliver(
    http: httpx.AsyncClient, setup: Setup, prefix: str, count: int, connections: int
) -> tuple[int, int]:
    refused = 0
    limiter = anyio.CapacityLimiter(connections)

    async def one(n: int) -> None:
        nonlocal refused
        async with limiter:
            refused += await _send_until_accepted(http, setup, f"{prefix}-{n}")

    async with anyio.create_task_group() as group:
        for n in range(count):
            group.start_soon(one, n)
    return count, refused


async def _paced(
    http: httpx.AsyncClient, setup: Setup, count: int, per_s: float
) -> tuple[int, int]:
    interval = 1.0 / per_s
    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for n in range(count):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await anyio.sleep(delay)
            group.start_soon(_send_until_accepted, http, setup, f"paced-{n}")
    return count, 0


def _query(setup: Setup, sql: str) -> list[tuple[object, ...]]:
    url = setup.url.replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


async def _wait_drained(setup: Setup, expected: int) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ((done,),) = _query(
            setup, "SELECT count(*) FROM runs WHERE status IN ('succeeded','failed','cancelled')"
        )
        if int(str(done)) >= expected:
            return
        await asyncio.sleep(0.05)
    raise BenchError(f"{setup.label}: runs did not finish within 600 s")


def _dropped(setup: Setup) -> int:
    """Accepted events whose fired run did not succeed."""
    ((count,),) = _query(
        setup,
        "SELECT count(*) FROM events e LEFT JOIN trigger_decisions d ON d.event_id = e.event_id "
        "LEFT JOIN runs r ON r.run_id = d.run_id "
        "WHERE e.status = 'accepted' AND (r.run_id IS NULL OR r.status <> 'succeeded')",
    )
    return int(str(count))


def _start_waits(setup: Setup, prefix: str) -> list[float]:
    """Milliseconds from an event's acceptance to its run's start."""
    rows = _query(
        setup,
        "SELECT e.received_at, r.started_at FROM events e "
        "JOIN trigger_decisions d ON d.event_id = e.event_id JOIN runs r ON r.run_id = d.run_id "
        f"WHERE e.sender_event_id LIKE '{prefix}%'",
    )
    waits: list[float] = []
    for received, started in rows:
        waits.append((_as_time(started) - _as_time(received)) * 1000)
    if not waits:
        raise BenchError("no paced runs to measure")
    return waits


def _as_time(value: object) -> float:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


_WRK_COUNTED = """
-- wrk calls request() once to check it before sending: let that call take a copy of the
-- first event, so the first event is still sent (at worst twice: a repeat is answered 200).
local build = init
init = function(args)
  build(args)
  table.insert(requests, 1, requests[1])
end
local answered = 0
response = function(status, headers, body)
  answered = answered + 1
  if answered == #bodies then
    local marker = io.open(%s, "w")
    marker:write("done")
    marker:close()
    wrk.thread:stop()
  end
end
"""


def _burst_with_wrk(setup: Setup, options: argparse.Namespace) -> tuple[int, int]:
    """The burst sent by ``wrk`` (one thread, ``--connections`` connections): each event
    signed in advance and sent once, in order. wrk runs for its whole ``-d`` even when its
    thread stops, so the script marks a file at the last answer and wrk is stopped then.
    Returns (accepted, refused): a refusal (503 when the backlog is full) is not resent."""
    from bench.ingest import _lua_string, ensure_wrk, write_script

    wrk = ensure_wrk()
    bodies = [
        json.dumps(
            {"type": "order.created", "id": f"burst-{n}", "payload": {"order_id": f"burst-{n}"}}
        ).encode()
        for n in range(options.events)
    ]
    with scratch_dir("wrk") as scratch:
        script, marker = scratch / "burst.lua", scratch / "answered"
        write_script(script, setup.hook.path, bodies, setup.hook.secret or "")
        # Past the last event the script would start over: it repeats the last instead.
        script.write_text(
            script.read_text()
            .replace("if n > #requests then n = 1 end", "")
            .replace("return requests[n]", "return requests[math.min(n, #requests)]")
            + _WRK_COUNTED % _lua_string(str(marker))
        )
        argv = [wrk, "-t1", f"-c{options.connections}", "-d600s", "--timeout", "30s"]
        sender = subprocess.Popen(
            [*argv, "-s", str(script), setup.api],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 600
            while not marker.exists() and sender.poll() is None:
                if time.monotonic() > deadline:
                    raise BenchError("wrk did not send the burst within 600 s")
                time.sleep(0.02)
            if sender.poll() is not None and not marker.exists():
                error = sender.stderr.read().decode() if sender.stderr else ""
                raise BenchError(f"wrk failed ({sender.returncode}): {error.strip()[-300:]}")
            # The last answer may have been a repeat while an earlier event is still in
            # flight: give those a moment to be answered before wrk goes.
            settle = time.monotonic() + 5
            while _burst_stored(setup) < options.events and time.monotonic() < settle:
                time.sleep(0.05)
        finally:
            sender.terminate()
            sender.wait(10)
    accepted = _burst_stored(setup)
    return accepted, options.events - accepted


def _burst_stored(setup: Setup) -> int:
    ((value,),) = _query(setup, "SELECT count(*) FROM events WHERE sender_event_id LIKE 'burst-%'")
    return int(str(value))
