"""Real MCP servers for tests, written with the ``mcp`` SDK, and helpers to run them.

``orders.py`` is one server (order lookup plus tools that fail, crash the server, sleep,
read the environment) that speaks stdio or streamable HTTP. Tests reach it through:

- ``stdio_config()``: a ``user_mcp`` source config that spawns it over stdio;
- ``serve_http(token, auth_header=None)``: a context manager that starts it over HTTP on a
  free loopback port in a subprocess, waits until it accepts connections (bounded, reading
  the port it announces, no sleeps), yields an ``HttpServer`` and stops it.

Import as ``from tests.mcp_servers import serve_http, stdio_config``.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ORDERS_SERVER = Path(__file__).with_name("orders.py")
"""The server script; run it with ``sys.executable``."""

TOKEN_ENV = "ORDERS_MCP_TOKEN"
"""Environment variable the HTTP server reads its expected credential from."""

ORDERS_TOOLS = ("add", "crash", "fail", "lookup_order", "order_summary", "read_env", "slow")
"""The tool names the server lists, sorted."""


def stdio_config(**overrides: Any) -> dict[str, Any]:
    """A ``user_mcp`` config that spawns the orders server over stdio with this interpreter."""
    return {
        "transport": "stdio",
        "command": sys.executable,
        "args": [str(ORDERS_SERVER)],
    } | overrides


@dataclass(frozen=True, slots=True)
class HttpServer:
    """A running HTTP orders server: where it is and what it wants."""

    url: str
    token: str
    auth_header: str | None
    pid: int

    def config(self, **overrides: Any) -> dict[str, Any]:
        """A ``user_mcp`` config for this server with the matching auth mode."""
        if self.auth_header is None:
            auth: dict[str, Any] = {"auth": "bearer"}
        else:
            auth = {"auth": "header", "header_name": self.auth_header}
        return {"transport": "http", "url": self.url, **auth} | overrides


@contextmanager
def serve_http(
    token: str, *, auth_header: str | None = None, startup_timeout_s: float = 20.0
) -> Iterator[HttpServer]:
    """Run the orders server over streamable HTTP on 127.0.0.1 for the ``with`` body.

    It requires ``Authorization: Bearer <token>``, or ``<auth_header>: <token>`` when
    ``auth_header`` is given. Raises ``RuntimeError`` (with the server's stderr) if it does
    not come up within ``startup_timeout_s``.
    """
    args = [sys.executable, str(ORDERS_SERVER), "--http"]
    if auth_header is not None:
        args += ["--auth-header", auth_header]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=os.environ | {TOKEN_ENV: token},
        )
        try:
            assert process.stdout is not None
            try:
                port = _read_port(process.stdout.fileno(), startup_timeout_s)
            except RuntimeError as exc:
                stderr.seek(0)
                detail = stderr.read().decode(errors="replace").strip()
                raise RuntimeError(f"{exc}; its stderr:\n{detail}") from None
            yield HttpServer(f"http://127.0.0.1:{port}/mcp", token, auth_header, process.pid)
        finally:
            _stop(process)


def _read_port(fd: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"the HTTP MCP server did not start within {timeout_s:g} s")
            if not selector.select(remaining):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("the HTTP MCP server exited before it announced its port")
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode()
    if not line.startswith("port="):
        raise RuntimeError(f"the HTTP MCP server announced {line!r}, not its port")
    return int(line.removeprefix("port="))


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


__all__ = [
    "ORDERS_SERVER",
    "ORDERS_TOOLS",
    "TOKEN_ENV",
    "HttpServer",
    "serve_http",
    "stdio_config",
]
