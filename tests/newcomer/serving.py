"""``cairn serve`` in a child process, as a newcomer starts it, and a recorder that stands
in for "some other server" and notes every request it gets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

CAIRN = str(Path(sys.executable).with_name("cairn"))


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh user: no CAIRN_* variable but ``CAIRN_HOME``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    return env | {"CAIRN_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"} | extra


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cairn(
    *args: str, env: dict[str, str], timeout_s: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``cairn ARGS`` in a child process, bounded."""
    return subprocess.run(
        [CAIRN, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@dataclass
class Served:
    """A running ``cairn serve``."""

    process: subprocess.Popen[str]
    url: str
    home: Path
    log: Path


@contextmanager
def serve(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    within_s: float = 60,
    command: str = CAIRN,
) -> Iterator[Served]:
    """``cairn serve --port <free> ARGS`` from ``home``, answering ``/healthz``; stopped at
    the end."""
    port = free_port()
    log = home.parent / f"serve-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [command, "serve", "--port", str(port), *args],
            env=env or clean_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + within_s
        while True:
            if process.poll() is not None:
                raise AssertionError(f"cairn serve exited: {log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"cairn serve not answering: {log.read_text()}")
            time.sleep(0.1)
        yield Served(process, url, home, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Recorder:
    """An HTTP server that answers 404 to everything and keeps each request's headers."""

    url: str
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@contextmanager
def recorder() -> Iterator[Recorder]:
    """A :class:`Recorder` on a free loopback port, in a thread."""
    seen: list[tuple[str, str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append((self.command, self.path, dict(self.headers.items())))
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            body = b'{"detail": "not here"}'
            self.send_response(404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Recorder(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
