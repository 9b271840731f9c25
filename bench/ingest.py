"""Webhook ingest under load: Cairn's ``POST /hooks/{source_id}`` vs the bare floor.

The load generator is ``wrk`` (Debian's package; the set-up installs it with ``apt-get``
when it is missing and this process may). Every request is a distinct, pre-signed event:
this process signs ``--events`` bodies per round (HMAC-SHA256 over ``timestamp.body``
for Cairn, over the body with key ``s3cret`` for the floor) into a wrk Lua script, which
sends them in order, so no delivery is a duplicate and nothing is signed on the hot path.

Both servers run as separate processes, on the same HTTP stack, started once each:

* Cairn: ``cairn serve`` on a scratch ledger (SQLite, the embedded default) with one
  webhook source;
* the floor: ``../shared/peers/ingest_floor.py`` under ``uvicorn`` (a bare FastAPI endpoint
  that checks an HMAC and inserts the event into SQLite), its database in a scratch
  ``TMPDIR`` so parallel runs cannot share it.

Rounds alternate floor, Cairn, floor, Cairn, … (``--rounds`` of each), ``wrk -t1
-c<connections> -d<seconds>s``; each Cairn round is checked against the ledger (every 2xx
is a stored event). Then one trigger is bound to the source (a tool-less scripted agent),
and Cairn is measured again: events/s and the share of events whose decision is ``fired``
(the others were refused by a full run queue: ``busy``, recorded, nothing lost).

Targets (issue #13), on the medians of the rounds with no trigger bound: Cairn at least
half the floor's events/s (verdict ratio: floor / Cairn / 2, at most 1) and Cairn's p99
under 50 ms (ratio: p99 / 50 ms).

``--stacks`` adds a pair of rounds with both servers on the pure-Python stack (asyncio
loop, h11) to show what uvloop and httptools (``uvicorn[standard]``) buy.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from bench._common import (
    BenchError,
    Verdict,
    clean_env,
    free_port,
    header,
    note,
    peers_dir,
    scratch_app,
    scratch_dir,
    sqlite_url,
    venv_script,
)
from cairn.domain.agents import ModelSettings
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.triggers import create_trigger
from cairn.services.webhooks import add_webhook_source, sign

NAME = "ingest"
HOST = "127.0.0.1"
SANDBOX = "default"
FLOOR_SECRET = b"s3cret"
EVENT_TYPE = "issue.opened"
TARGET_SHARE = 0.5  # Cairn's events/s at least half the floor's
TARGET_P99_MS = 50.0
READY_TIMEOUT_S = 30.0

_LUA = """
local requests = {}
local bodies = {
%(bodies)s
}
local headers = {
%(headers)s
}
local path = %(path)s
init = function(args)
  for i = 1, #bodies do
    requests[i] = wrk.format("POST", path, headers[i], bodies[i])
  end
end
local n = 0
request = function()
  n = n + 1
  if n > #requests then n = 1 end
  return requests[n]
end
done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, "
    .. "\\"p99_us\\": %%d, \\"max_us\\": %%d, \\"connect\\": %%d, \\"read\\": %%d, "
    .. "\\"write\\": %%d, \\"status\\": %%d, \\"timeout\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk round (8)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, alternating (3)")
    parser.add_argument(
        "--events", type=int, default=60_000, help="distinct pre-signed events per round (60000)"
    )
    parser.add_argument(
        "--trigger-rounds", type=int, default=2, help="Cairn rounds with a trigger bound (2)"
    )
    parser.add_argument(
        "--stacks", action="store_true", help="also one round each on asyncio + h11"
    )


@dataclass(frozen=True, slots=True)
class Round:
    """One wrk round's result."""

    who: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    cpu_ms: float = 0.0  # the server process's CPU time per completed request

    @property
    def per_s(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds

    def line(self) -> str:
        """One line for the report."""
        failed = f"  errors {self.errors}" if self.errors else ""
        return (
            f"{self.who:<24} {self.per_s:8.0f} events/s  p50 {self.p50_ms:6.1f} ms  "
            f"p99 {self.p99_ms:6.1f} ms  max {self.max_ms:6.1f} ms  "
            f"server CPU {self.cpu_ms:5.2f} ms/event  (n={self.requests}){failed}"
        )


# --- wrk ----------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The ``wrk`` binary; installed from Debian's packages when missing (as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BenchError("wrk is not installed: apt-get install wrk (Debian's package)")
    note("wrk not found: apt-get install -y wrk")
    done = subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, text=True, check=False
    )
    found = shutil.which("wrk")
    if done.returncode != 0 or found is None:
        raise BenchError(f"apt-get install wrk failed: {done.stderr.strip()[-500:]}")
    return found


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def _lua_table(headers: dict[str, str]) -> str:
    pairs = (f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items())
    return "{" + ", ".join(pairs) + "}"


def _bodies(tag: str, count: int) -> list[bytes]:
    return [
        json.dumps(
            {"type": EVENT_TYPE, "id": f"{tag}-{i}", "payload": {"title": f"bench {i}", "n": i}},
            separators=(",", ":"),
        ).encode()
        for i in range(count)
    ]


def write_script(path: Path, url_path: str, bodies: list[bytes], signing: str | None) -> None:
    """A wrk script that sends ``bodies`` in order, each signed for Cairn (``signing`` is the
    source's secret) or for the floor (``None``)."""
    timestamp = str(int(time.time()))
    headers: list[str] = []
    for body in bodies:
        if signing is None:
            digest = hmac.new(FLOOR_SECRET, body, hashlib.sha256).hexdigest()
            head = {"Content-Type": "application/json", "x-signature": digest}
        else:
            head = {
                "Content-Type": "application/json",
                "X-Cairn-Timestamp": timestamp,
                "X-Cairn-Signature": sign(signing, timestamp, body),
            }
        headers.append(_lua_table(head))
    path.write_text(
        _LUA
        % {
            "bodies": ",\n".join(_lua_string(body.decode()) for body in bodies),
            "headers": ",\n".join(headers),
            "path": _lua_string(url_path),
        }
    )


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used: on a shared machine the CPU a
    server spends per event carries over where its wall-clock rate does not."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    wrk: str, who: str, url: str, script: Path, options: argparse.Namespace, pid: int = 0
) -> Round:
    """One wrk round; its summary comes back through the script's ``done`` as JSON."""
    argv = [
        wrk,
        "-t1",
        f"-c{options.connections}",
        f"-d{options.seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    cpu_before = _cpu_s(pid) if pid else 0.0
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    cpu = _cpu_s(pid) - cpu_before if pid else 0.0
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    data = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(int(data[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return Round(
        who,
        int(data["requests"]),
        data["duration_us"] / 1e6,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        data["max_us"] / 1000,
        errors,
        cpu * 1000 / max(1, int(data["requests"])),
    )


# --- servers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Served:
    """A server process on a loopback port."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        """The end of the server's output, for error messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return "(no log)"


def _wait_ready(server: Served, probe_path: str) -> None:
    started = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=1.0) as client:
        while time.monotonic() - started < READY_TIMEOUT_S:
            if server.process.poll() is not None:
                raise BenchError(f"{server.name} exited:\n{server.log_tail()}")
            try:
                client.get(probe_path)
                return
            except httpx.TransportError:
                time.sleep(0.05)
    raise BenchError(f"{server.name} not ready after {READY_TIMEOUT_S:g} s:\n{server.log_tail()}")


@contextmanager
def _serve(
    name: str, argv: list[str], env: dict[str, str], cwd: Path, log: Path, port: int, probe: str
) -> Iterator[Served]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    server = Served(name, f"http://{HOST}:{port}", process, log)
    try:
        _wait_ready(server, probe)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _uvicorn_stack(stack: str) -> list[str]:
    return ["--loop", "asyncio", "--http", "h11"] if stack == "plain" else []


@contextmanager
def serve_cairn(home: Path, stack: str = "fast") -> Iterator[Served]:
    """``cairn serve`` on ``home`` (the product as shipped); on the plain stack, the same app
    under the ``uvicorn`` command with ``--loop asyncio --http h11``."""
    port = free_port(HOST)
    env = clean_env(CAIRN_HOME=str(home))
    if stack == "fast":
        argv = [str(venv_script("cairn")), "serve", "--host", HOST, "--port", str(port)]
    else:
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "bench.ingest:cairn_factory",
            "--host",
            HOST,
            "--port",
            str(port),
            "--log-level",
            "warning",
            *_uvicorn_stack(stack),
        ]
    with _serve("cairn", argv, env, Path.cwd(), home / f"serve-{stack}.log", port, "/healthz") as s:
        yield s


@contextmanager
def serve_floor(scratch: Path, stack: str = "fast") -> Iterator[Served]:
    """The floor peer under ``uvicorn``, its SQLite file in ``scratch`` (via ``TMPDIR``)."""
    port = free_port(HOST)
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "ingest_floor:app",
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        *_uvicorn_stack(stack),
    ]
    env = clean_env(TMPDIR=str(scratch))
    log = scratch / f"floor-{stack}.log"
    with _serve("floor", argv, env, peers_dir(), log, port, "/docs") as served:
        yield served


def cairn_factory() -> object:
    """The ASGI app ``cairn serve`` runs, for ``uvicorn --factory`` (the plain-stack rounds)."""
    from cairn.api.app import create_app
    from cairn.cli.serve import freeze_startup_objects
    from cairn.config import load_settings
    from cairn.services.app import App

    api = create_app(App(load_settings()))
    freeze_startup_objects()  # as ``cairn serve`` does
    return api


# --- the ledger ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hook:
    """The webhook source Cairn is loaded through."""

    source_id: str
    path: str
    secret: str


def _prepare(home: Path) -> Hook:
    with scratch_app(home) as app:
        made = add_webhook_source(app, SANDBOX, "bench")
    if made.secret is None:  # Cairn's own provider always issues one
        raise BenchError("the webhook source came without a signing secret")
    return Hook(made.source.source_id, made.path, made.secret)


def _bind_trigger(home: Path, hook: Hook) -> None:
    async def bind() -> None:
        with scratch_app(home) as app:
            await create_agent(
                app,
                SANDBOX,
                AgentSpec(
                    slug="triage",
                    system_prompt="Triage the issue.",
                    tool_sources=[],
                    model_settings=ModelSettings(
                        script={"turns": [{"text": "Triaged {{event.title}}"}]}
                    ),
                ),
            )
            create_trigger(app, SANDBOX, "triage", hook.source_id, event_type_filter=EVENT_TYPE)

    anyio.run(bind)


def _ledger_counts(home: Path, tag: str) -> tuple[int, dict[str, int]]:
    """Events stored for round ``tag``, and their decisions by kind."""
    db = sqlite3.connect(sqlite_url(home).removeprefix("sqlite:///"))
    try:
        stored = db.execute(
            "select count(*) from events where sender_event_id like ?", (f"{tag}-%",)
        ).fetchone()[0]
        decided = dict(
            db.execute(
                "select d.decision, count(*) from trigger_decisions d join events e "
                "on e.event_id = d.event_id where e.sender_event_id like ? group by d.decision",
                (f"{tag}-%",),
            ).fetchall()
        )
    finally:
        db.close()
    return int(stored), {str(k): int(v) for k, v in decided.items()}


# --- the benchmark ------------------------------------------------------------------------


def _cairn_round(
    wrk: str, cairn: Served, hook: Hook, scratch: Path, tag: str, options: argparse.Namespace
) -> tuple[Round, dict[str, int]]:
    script = scratch / f"{tag}.lua"
    write_script(script, hook.path, _bodies(tag, options.events), hook.secret)
    result = run_wrk(wrk, f"cairn {tag}", cairn.url, script, options, cairn.process.pid)
    stored, decisions = _ledger_counts(scratch / "home", tag)
    if result.errors:
        raise BenchError(f"cairn answered {result.errors} requests with errors in round {tag}")
    if result.requests > options.events:
        raise BenchError(f"round {tag} sent {result.requests} > --events {options.events}")
    if stored < result.requests:
        raise BenchError(f"round {tag}: {result.requests} accepted but {stored} events stored")
    return result, decisions


def _floor_round(
    wrk: str, floor: Served, scratch: Path, tag: str, options: argparse.Namespace
) -> Round:
    script = scratch / f"{tag}.lua"
    write_script(script, "/hook", _bodies(tag, options.events), None)
    result = run_wrk(wrk, f"floor {tag}", floor.url, script, options, floor.process.pid)
    if result.errors:
        raise BenchError(f"the floor answered {result.errors} requests with errors")
    return result


def _median(rounds: Sequence[Round], attribute: str) -> float:
    return statistics.median(float(getattr(r, attribute)) for r in rounds)


def run(options: argparse.Namespace) -> list[Verdict]:
    """Alternate the floor and Cairn under wrk, then Cairn with a trigger bound."""
    wrk = ensure_wrk()
    header(
        f"{NAME}: wrk -t1 -c{options.connections} -d{options.seconds}s, distinct pre-signed "
        f"events, {options.rounds} rounds each, alternating"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    note(f"load average before: {load}")
    with scratch_dir("ingest") as scratch:
        home = scratch / "home"
        home.mkdir()
        hook = _prepare(home)
        floors: list[Round] = []
        cairns: list[Round] = []
        with serve_floor(scratch) as floor, serve_cairn(home) as cairn:
            for i in range(options.rounds):
                floors.append(_floor_round(wrk, floor, scratch, f"f{i}", options))
                note(floors[-1].line())
                result, _ = _cairn_round(wrk, cairn, hook, scratch, f"c{i}", options)
                cairns.append(result)
                note(cairns[-1].line())
        ratios = [c.per_s / f.per_s for c, f in zip(cairns, floors, strict=True)]
        floor_rate, cairn_rate = _median(floors, "per_s"), _median(cairns, "per_s")
        cairn_p99 = _median(cairns, "p99_ms")
        note(
            f"medians: floor {floor_rate:.0f} events/s p99 {_median(floors, 'p99_ms'):.1f} ms; "
            f"cairn {cairn_rate:.0f} events/s p99 {cairn_p99:.1f} ms"
        )
        note(
            f"cairn / floor: {cairn_rate / floor_rate:.2f} (per pair: "
            f"{', '.join(f'{r:.2f}' for r in ratios)})"
        )
        floor_cpu, cairn_cpu = _median(floors, "cpu_ms"), _median(cairns, "cpu_ms")
        note(
            f"server CPU per event: floor {floor_cpu:.2f} ms, cairn {cairn_cpu:.2f} ms "
            f"(floor / cairn {floor_cpu / max(cairn_cpu, 1e-9):.2f}: the share of the floor's "
            "rate Cairn would reach with a core to itself)"
        )
        if options.stacks:
            _stacks(wrk, scratch, home, hook, options)
        if options.trigger_rounds:
            _with_trigger(wrk, scratch, home, hook, options, floor_rate)
    note(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return [
        Verdict(
            NAME,
            f"cairn {cairn_rate:.0f} events/s vs floor {floor_rate:.0f} "
            f"({cairn_rate / floor_rate:.2f}; target >= {TARGET_SHARE:.2f})",
            (floor_rate / cairn_rate) * TARGET_SHARE,
            1.0,
        ),
        Verdict(
            NAME,
            f"cairn p99 {cairn_p99:.1f} ms at {options.connections} connections "
            f"(target < {TARGET_P99_MS:g} ms)",
            cairn_p99 / TARGET_P99_MS,
            1.0,
        ),
    ]


def _with_trigger(
    wrk: str,
    scratch: Path,
    home: Path,
    hook: Hook,
    options: argparse.Namespace,
    floor_rate: float,
) -> None:
    _bind_trigger(home, hook)
    note("one trigger bound (a tool-less scripted agent; every event fires it)")
    with serve_cairn(home) as cairn:
        for i in range(options.trigger_rounds):
            result, decisions = _cairn_round(wrk, cairn, hook, scratch, f"t{i}", options)
            fired = decisions.get("fired", 0)
            total = sum(decisions.values()) or 1
            others = ", ".join(f"{k} {v}" for k, v in sorted(decisions.items()) if k != "fired")
            note(result.line())
            note(
                f"  fired {fired} of {total} decided ({fired / total:.0%})"
                f"{'; ' + others if others else ''}; vs floor {result.per_s / floor_rate:.2f}"
            )


def _stacks(wrk: str, scratch: Path, home: Path, hook: Hook, options: argparse.Namespace) -> None:
    note("pure-Python stack (asyncio + h11) for comparison, no trigger bound:")
    with serve_floor(scratch, "plain") as floor, serve_cairn(home, "plain") as cairn:
        floor_round = _floor_round(wrk, floor, scratch, "pf", options)
        note(floor_round.line())
        cairn_round, _ = _cairn_round(wrk, cairn, hook, scratch, "pc", options)
        note(cairn_round.line())
