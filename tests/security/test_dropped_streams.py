"""Clients that vanish from a live stream cost the server nothing, not even log lines.

Under fuzzing, SSE endpoints made ``cairn serve`` log ``socket.send() raised exception.``
by the thousand: streams kept writing into sockets whose clients had gone. Here a real
``cairn serve`` child process gets several agent tails whose clients reset their
connections (RST, as a crashed client or a fuzzer does), then runs that would feed those
tails; its whole stderr is read afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import cairn
from tests.api.helpers import bind_loopback, eventually, quick_settings

CAIRN = str(Path(sys.executable).with_name("cairn"))
TAILS = 8
FIRES = 12


def _reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN: the peer sees its next writes fail."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.slow
def test_streams_whose_clients_vanish_are_dropped_without_log_spam(
    tmp_path: Path, sqlite_template: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    shutil.copy(sqlite_template, ledger)
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env |= {"CAIRN_HOME": str(home), "CAIRN_DATABASE_URL": f"sqlite:///{ledger}"}
    probe = bind_loopback()
    port = probe.getsockname()[1]
    probe.close()
    url = f"http://127.0.0.1:{port}"
    stderr_path = tmp_path / "serve.stderr"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [CAIRN, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:

        def ready() -> bool:
            assert process.poll() is None, "cairn serve exited while starting"
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        eventually(ready, within_s=30, what="cairn serve answering /healthz")
        token = next((home / "local-keys").glob("*/default")).read_text().strip()
        with cairn.Client(url, api_key=token) as client:
            client.agents.create("chatty", "You help.", model_settings=quick_settings())
            request = (
                "GET /api/v1/sandboxes/default/agents/chatty/runs/stream HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                "Accept: text/event-stream\r\n\r\n"
            ).encode()
            for _ in range(TAILS):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                sock.sendall(request)
                assert sock.recv(64).startswith(b"HTTP/1.1 200"), "the tail opened"
                _reset(sock)
            fired = [client.agents.fire("chatty").run_id for _ in range(FIRES)]

            def all_finished() -> bool:
                return all(client.runs.get(run_id).status == "succeeded" for run_id in fired)

            eventually(all_finished, within_s=60, what="every fire finished")
            # One more tail, kept: the server still streams to clients that stayed.
            with httpx.stream(
                "GET",
                f"{url}/api/v1/sandboxes/default/agents/chatty/runs/stream",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            ) as tail:
                assert tail.status_code == 200
                client.agents.fire("chatty")
                assert any(line.startswith("data:") for line in tail.iter_lines())
    finally:
        process.terminate()
        process.wait(30)
    logged = stderr_path.read_text()
    assert "socket.send() raised exception" not in logged
    assert "Traceback" not in logged, logged[-2000:]
