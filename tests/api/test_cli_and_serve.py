"""The ``cairn`` command as a separate process: against a server through the SDK (with
``CAIRN_URL`` and ``CAIRN_API_KEY``) and in-process over the ledger (without them); and
``cairn serve`` itself, stopped with SIGTERM while a follower is connected."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import cairn
from tests.api.conftest import Deployment
from tests.api.helpers import (
    Bounded,
    bind_loopback,
    eventually,
    hanging_settings,
    quick_settings,
    slow_settings,
)

CAIRN = str(Path(sys.executable).with_name("cairn"))


def run_cli(
    *args: str, env: dict[str, str], timeout_s: float = 30
) -> subprocess.CompletedProcess[str]:
    """``cairn ARGS`` in a child process, bounded."""
    return subprocess.run(
        [CAIRN, *args], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    return env | {"CAIRN_HOME": str(home), "NO_COLOR": "1"}


@pytest.fixture
def remote(deployment: Deployment, tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI that talks to the server (editor key)."""
    return _base_env(tmp_path / "cli-home") | {
        "CAIRN_URL": deployment.url,
        "CAIRN_API_KEY": deployment.keys.editor,
    }


@pytest.fixture
def local(deployment: Deployment) -> dict[str, str]:
    """The environment of a CLI on the machine that holds the ledger (no server)."""
    return _base_env(deployment.home) | {"CAIRN_DATABASE_URL": deployment.database_url}


def test_agent_runs_json_lists_what_the_sdk_lists(
    deployment: Deployment, remote: dict[str, str], slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings())
    made = [client.agents.test(slug, event_payload={"n": n}).run_id for n in range(3)]
    result = run_cli("agent", "runs", slug, "--json", env=remote)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["run_id"] for row in rows] == made[::-1]
    assert rows == [run.model_dump() for run in client.agents.runs.list(slug).runs]
    limited = run_cli("agent", "runs", slug, "--json", "--limit", "1", env=remote)
    assert [row["run_id"] for row in json.loads(limited.stdout)] == made[-1:]
    none = run_cli("agent", "runs", slug, "--json", "--status", "failed", env=remote)
    assert json.loads(none.stdout) == []
    replayed = run_cli(
        "runs", "replay", made[0], "--event-payload", '{"n": 9}', "--json", env=remote
    )
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["replay_of"] == made[0]
    assert client.runs.get(json.loads(replayed.stdout)["run_id"]).event_payload == {"n": 9}


def test_runs_follow_prints_each_event_once_and_exits_with_the_status(
    deployment: Deployment, remote: dict[str, str], slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=slow_settings(turns=2, delay_s=0.2))
    fired = client.agents.fire(slug, event_payload={"title": "cli"})
    result = run_cli("runs", "follow", fired.run_id, "--json", env=remote)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[-1] == {
        "event": "end",
        "data": {"run_id": fired.run_id, "status": "succeeded", "outcome": "acted"},
    }
    seqs = [line["data"]["seq"] for line in lines[:-1]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [line["data"] for line in lines[:-1]] == [
        event.model_dump() for event in client.runs.events(fired.run_id)
    ]


def test_runs_cancel_through_the_server_stops_the_run(
    deployment: Deployment, remote: dict[str, str], slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=hanging_settings(30))
    fired = client.agents.fire(slug)
    stream = Bounded(client.runs.stream(fired.run_id))
    assert next(stream).seq == 1
    result = run_cli("runs", "cancel", fired.run_id, "--json", env=remote)
    answered = time.monotonic()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["run_id"] == fired.run_id
    assert [event.kind for event in stream] == ["tool_call", "tool_result", "error"]
    assert time.monotonic() - answered < 1.0, "the run stops within a second"
    assert client.runs.get(fired.run_id).status == "cancelled"

    again = run_cli("runs", "cancel", fired.run_id, env=remote)
    assert again.returncode != 0
    assert again.stderr.startswith("error: ") and "already finished" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1, "one line, no traceback"


def test_the_cli_shows_refusals_of_the_server_in_one_line(
    deployment: Deployment, remote: dict[str, str], slug: str
) -> None:
    deployment.client().agents.create(slug, "You help.", model_settings=hanging_settings(30))
    run_id = deployment.client().agents.fire(slug).run_id
    as_viewer = remote | {"CAIRN_API_KEY": deployment.keys.viewer}
    refused = run_cli("runs", "cancel", run_id, env=as_viewer)
    assert refused.returncode != 0
    assert refused.stderr.startswith("error: ") and "viewer" in refused.stderr
    unknown = run_cli("agent", "runs", slug, env=remote | {"CAIRN_API_KEY": "key_x.nope"})
    assert unknown.returncode != 0 and "unknown or revoked" in unknown.stderr
    deployment.client().runs.cancel(run_id)


def test_in_process_replay_and_cancel_work_on_the_ledger_without_the_server(
    deployment: Deployment, local: dict[str, str], slug: str
) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings("On {{event.title}}"))
    original = client.agents.test(slug, event_payload={"title": "first"})

    same = run_cli("runs", "replay", original.run_id, "--json", env=local)
    assert same.returncode == 0, same.stderr
    replayed = json.loads(same.stdout)
    assert replayed["replay_of"] == original.run_id
    assert replayed["event_payload"] == {"title": "first"}
    assert replayed["output_text"] == "On first"
    edited = run_cli(
        "runs",
        "replay",
        original.run_id,
        "--event-payload",
        '{"title": "edited"}',
        "--json",
        env=local,
    )
    assert edited.returncode == 0, edited.stderr
    assert json.loads(edited.stdout)["output_text"] == "On edited"
    seen = {run.run_id: run for run in client.agents.runs.list(slug).runs}
    assert seen[replayed["run_id"]].replay_of == original.run_id, "the server sees the replay"

    # A run live in the server, cancelled by a CLI that only has the ledger.
    client.agents.update(slug, model_settings=hanging_settings(30))
    fired = client.agents.fire(slug)
    stream = Bounded(client.runs.stream(fired.run_id))
    assert next(stream).seq == 1
    result = run_cli("runs", "cancel", fired.run_id, env=local)
    assert result.returncode == 0, result.stderr
    # Counted from the ledger's cancel request (the CLI has returned), not from the CLI's
    # own start, which a loaded machine stretches to seconds: the server must notice a
    # request it did not receive within its poll, far inside the 30 s the run would take.
    asked = time.monotonic()
    assert [event.kind for event in stream][-1] == "error"
    assert time.monotonic() - asked < 5
    assert client.runs.get(fired.run_id).status == "cancelled"


# --- `cairn serve` under SIGTERM ---------------------------------------------------------


@dataclass
class Served:
    """A ``cairn serve`` child process over an SQLite ledger of its own."""

    process: subprocess.Popen[str]
    url: str
    token: str
    ledger: Path

    def statuses(self) -> dict[str, str]:
        """Every run's status, straight from the ledger file."""
        with closing(sqlite3.connect(self.ledger)) as conn:
            return dict(conn.execute("SELECT run_id, status FROM runs").fetchall())


@pytest.fixture
def served(tmp_path: Path, sqlite_template: Path) -> Iterator[Served]:
    """``cairn serve`` started in a child process, answering ``/healthz``; killed at
    teardown if the test left it running."""
    ledger = tmp_path / "ledger.db"
    shutil.copy(sqlite_template, ledger)
    home = tmp_path / "serve-home"
    sock = bind_loopback()
    port = sock.getsockname()[1]
    sock.close()
    env = _base_env(home) | {"CAIRN_DATABASE_URL": f"sqlite:///{ledger}"}
    process = subprocess.Popen(
        [CAIRN, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, "cairn serve exited while starting"
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        eventually(ready, within_s=20, what="cairn serve answering /healthz")
        token = next((home / "local-keys").glob("*/default")).read_text().strip()
        yield Served(process, url, token, ledger)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.slow
def test_sigterm_with_followers_connected_still_shuts_down_and_leaves_no_run_live(
    served: Served, slug: str
) -> None:
    with cairn.Client(served.url, api_key=served.token) as client:
        client.agents.create(slug, "You help.", model_settings=slow_settings(turns=5, delay_s=0.5))
        fired = client.agents.fire(slug)
        follower = Bounded(client.runs.stream(fired.run_id), within_s=60)
        assert next(follower).seq == 1
        with httpx.stream(
            "GET",
            f"{served.url}/api/v1/sandboxes/default/agents/{slug}/runs/stream",
            headers={"Authorization": f"Bearer {served.token}"},
            timeout=60,
        ) as tail:
            assert tail.status_code == 200
            served.process.send_signal(signal.SIGTERM)
            try:
                served.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pytest.fail("cairn serve did not exit within 30 s of SIGTERM with followers")
    assert served.statuses() == {fired.run_id: "succeeded"}, "it finished in the grace period"
