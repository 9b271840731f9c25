"""A real ``cairn serve`` app on a loopback port for the trigger tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from cairn.api.app import create_app
from cairn.config import Settings
from cairn.services.access import create_key
from cairn.services.app import App


@dataclass
class Server:
    """A running server, its app and an owner key for ``default``."""

    url: str
    app: App
    key: str

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1/sandboxes/default",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(settings: Settings) -> Iterator[Server]:
    """``create_app`` under uvicorn in a thread; stopped (gracefully) after the test."""
    app = App(settings)
    api = create_app(app, workers=4, run_schedules=False)
    port = _free_port()
    config = uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=1) as probe:
        for _ in range(200):  # bounded wait for the listening socket and the lifespan
            try:
                if probe.get(f"{url}/healthz").status_code == 200 and uv.started:
                    break
            except httpx.TransportError:
                pass
            threading.Event().wait(0.05)
        else:
            raise RuntimeError("the test server did not start")
    _, token = create_key(app, "default", "tests", "owner")
    try:
        yield Server(url, app, token)
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        app.close()
