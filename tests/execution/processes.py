"""Real ``cairn serve`` and ``cairn worker`` processes over a test's ledger, a side-effect
recorder their runs call, and bounded waits on the ledger.

``Node`` starts a process with ``CAIRN_HOME``/``CAIRN_DATABASE_URL`` of the test and a
short lease (``CAIRN_LEASE_S``), so "liveness is the lease" is checked in seconds, not
minutes. The ``Recorder`` is an HTTP server the runs' ``http_request`` tool calls POST to;
it appends each body to a file, so a run that executed twice shows up twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import select

import cairn
from cairn.store import open_store
from cairn.store.schema import runs as runs_table
from tests.api.helpers import bind_loopback

T = TypeVar("T")
CAIRN = str(Path(sys.executable).parent / "cairn")
# ``CAIRN_ACCEPTANCE=full`` runs the acceptance scenarios at the sizes the durability issue
# names (a 5,000-event burst, a five-minute backlog); the default sizes keep the suite short.
FULL_SCALE = os.environ.get("CAIRN_ACCEPTANCE") == "full"


def scaled(small: int, full: int) -> int:
    """``full`` under ``CAIRN_ACCEPTANCE=full``, else ``small``."""
    return full if FULL_SCALE else small


def free_port() -> int:
    """A port nobody listens on now (the child binds it right after)."""
    sock = bind_loopback()
    try:
        return int(sock.getsockname()[1])
    finally:
        sock.close()


@dataclass
class Node:
    """One Cairn process: ``serve`` (with ``url``) or ``worker``."""

    args: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of a serve node."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Node:
        """Start; a serve node returns once ``/healthz`` answers (bounded)."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [CAIRN, *self.args], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        if self.port is not None:
            eventually(self._healthy, within_s=90, what=f"{self.args} ready")
        return self

    def _healthy(self) -> bool | None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.args} exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200 or None
        except httpx.TransportError:
            return None

    def terminate(self, within_s: float = 30) -> int:
        """SIGTERM, then wait for the exit (bounded)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(within_s)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop_quietly(self) -> None:
        """Teardown: end the process however it can be ended."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Cluster:
    """Nodes over one ledger; all stopped at teardown."""

    database_url: str
    home: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    clients: list[cairn.Client] = field(default_factory=list)

    def client(self, node: Node, key: str) -> cairn.Client:
        """An SDK client of a serve node (closed at teardown)."""
        made = cairn.Client(node.url, api_key=key)
        self.clients.append(made)
        return made

    def env(self, **more: str) -> dict[str, str]:
        """The children's environment."""
        env = dict(os.environ)
        env.update(
            CAIRN_HOME=str(self.home),
            CAIRN_DATABASE_URL=self.database_url,
            CAIRN_LEASE_S="5",
            CAIRN_HTTP_ALLOWED_HOSTS="127.0.0.1",
        )
        env.update(self.extra_env)
        env.update(more)
        return env

    def serve(self, *options: str, **env: str) -> Node:
        """A started ``cairn serve`` on a free port."""
        port = free_port()
        node = Node(
            ["serve", "--port", str(port), *options],
            self.env(**env),
            self.home / f"serve-{len(self.nodes)}.log",
            port,
        )
        self.nodes.append(node)
        return node.start()

    def worker(self, *options: str, **env: str) -> Node:
        """A started ``cairn worker``."""
        node = Node(["worker", *options], self.env(**env), self.home / f"w-{len(self.nodes)}.log")
        self.nodes.append(node)
        return node.start()

    def stop_all(self) -> None:
        """Teardown."""
        for made in self.clients:
            made.close()
        for node in self.nodes:
            node.stop_quietly()

    def all_final(self, run_ids: list[str]) -> dict[str, Any] | None:
        """Every run row, once all of ``run_ids`` are final (for ``eventually``)."""
        rows = self.runs()
        final = ("succeeded", "failed", "cancelled")
        return rows if all(rows[run_id].status in final for run_id in run_ids) else None

    def runs(self) -> dict[str, Any]:
        """Every run row by id, read by a fresh connection."""
        store = open_store(self.database_url)
        try:
            with store.connect() as conn:
                return {row.run_id: row for row in conn.execute(select(runs_table))}
        finally:
            store.close()


class Recorder:
    """POSTed bodies, appended one per line to ``path``: the runs' side effects."""

    def __init__(self, path: Path) -> None:
        self.path = path
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with lock, path.open("ab") as out:
                    out.write(body + b"\n")
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # many runs call at once; the default backlog is 5
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/effect"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def lines(self) -> list[str]:
        """Every recorded body, in order."""
        if not self.path.exists():
            return []
        return [line for line in self.path.read_text().splitlines() if line]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def effect_settings(recorder_url: str, delay_s: float) -> dict[str, Any]:
    """A scripted agent whose run POSTs ``{{event.n}}`` to the recorder (its side effect),
    then waits ``delay_s`` and ends. Recorded lines read ``n=<n>``."""
    return {
        "backend": "scripted",
        "script": {
            "turns": [
                {
                    "text": "Recording. ",
                    "tool_calls": [
                        {
                            "name": "http_request",
                            "arguments": {
                                "url": recorder_url,
                                "method": "POST",
                                "body": "n={{event.n}}",
                            },
                        }
                    ],
                },
                {"delay_s": delay_s, "text": "Done {{event.n}}."},
            ]
        },
        "timeout_s": delay_s + 60,
    }


def eventually(check: Callable[[], T | None], *, within_s: float, what: str) -> T:
    """``check()`` once it is truthy, polled under a deadline (never an open-ended sleep)."""
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within_s} s: {what} (last check: {result!r})")
        time.sleep(0.1)
