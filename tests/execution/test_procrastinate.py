"""The ``procrastinate`` backend with real processes on the local PostgreSQL: fires through
an API-only node run as procrastinate jobs on ``cairn worker`` processes; a SIGKILLed
worker's runs end ``worker_lost`` and its queue goes to the survivor, none run twice; the
job is deferred in the fire's own transaction; SQLite is refused at start."""

from __future__ import annotations

import itertools
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, text

from cairn.domain.runs import Run
from cairn.execution.procrastinate import QUEUE, ProcrastinateBackend
from cairn.services import runs as run_service
from cairn.services.app import App
from cairn.store import workers as worker_store
from cairn.store.engine import normalise_url
from tests.api.conftest import Keys
from tests.conftest import _reset_postgres
from tests.execution.processes import CAIRN, Cluster, Recorder, effect_settings, eventually

PROCRASTINATE_TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)


@pytest.fixture
def database_url(postgres_server_url: str | None) -> str:
    """An empty ledger on PostgreSQL only, with no procrastinate jobs or workers left."""
    if postgres_server_url is None:
        pytest.skip("PostgreSQL not reachable at CAIRN_TEST_POSTGRES_URL")
    _reset_postgres(postgres_server_url)
    engine = create_engine(normalise_url(postgres_server_url))
    with engine.begin() as conn:
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            conn.execute(text(f"TRUNCATE {', '.join(PROCRASTINATE_TABLES)} CASCADE"))
    engine.dispose()
    return postgres_server_url


@pytest.fixture
def procrastinated(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster's processes select the procrastinate backend."""
    cluster.extra_env["CAIRN_EXECUTOR"] = "procrastinate"
    yield cluster


def _jobs(app: App, status: str | None = None) -> int:
    """Jobs on Cairn's queue (in ``status`` if given)."""
    query = "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = :queue"
    if status is not None:
        query += " AND status = CAST(:status AS procrastinate_job_status)"
    with app.store.connect() as conn:
        return int(conn.execute(text(query), {"queue": QUEUE, "status": status}).scalar_one())


def _job_statuses(conn: Connection, run_id: str) -> list[str]:
    """The statuses of the jobs of ``run_id`` on Cairn's queue."""
    query = text(
        "SELECT status::text FROM procrastinate_jobs "
        "WHERE queue_name = :queue AND args->>'run_id' = :run_id ORDER BY id"
    )
    return list(conn.execute(query, {"queue": QUEUE, "run_id": run_id}).scalars())


def _statuses(cluster: Cluster, run_ids: list[str]) -> dict[str, str]:
    rows = cluster.runs()
    return {run_id: rows[run_id].status for run_id in run_ids}


def test_fires_through_an_api_node_run_on_procrastinate_workers(
    procrastinated: Cluster, keys: Keys, recorder: Recorder, ledger_app: App
) -> None:
    cluster = procrastinated
    api = cluster.serve("--no-workers")
    first = cluster.worker("--concurrency", "4")
    second = cluster.worker("--concurrency", "4")
    client = cluster.client(api, keys.owner)
    client.agents.create("steady", "x", model_settings=effect_settings(recorder.url, 0.5))
    client.agents.create("long", "x", model_settings=effect_settings(recorder.url, 60))
    fired = [client.agents.fire("steady", event_payload={"n": n}).run_id for n in range(16)]
    rows = eventually(
        lambda: cluster.all_final(fired), within_s=120, what="16 runs final on the workers"
    )
    assert {rows[run_id].status for run_id in fired} == {"succeeded"}
    takers = Counter(rows[run_id].worker_id for run_id in fired)
    assert len(takers) == 2, f"4 slots each, 16 runs of 0.5 s: both workers take some {takers}"
    assert Counter(recorder.lines()) == Counter(f"n={n}" for n in range(16)), "each ran once"
    eventually(lambda: _jobs(ledger_app) == 0, within_s=30, what="succeeded jobs deleted")

    # Cancel reaches a run executing in another process; a cancelled queued run is skipped.
    running = client.agents.fire("long", event_payload={"n": 100}).run_id
    eventually(
        lambda: _statuses(cluster, [running])[running] == "running",
        within_s=30,
        what="the long run executing",
    )
    client.runs.cancel(running)
    ended = eventually(
        lambda: cluster.all_final([running]), within_s=30, what="the cancel reaching it"
    )
    assert ended[running].status == "cancelled"
    for node in (first, second):
        assert node.terminate() == 0, node.log.read_text()[-2000:]
    waiting = client.agents.fire("steady", event_payload={"n": 200}).run_id
    assert client.runs.cancel(waiting).status == "cancelled"
    cluster.worker("--concurrency", "2")
    eventually(lambda: _jobs(ledger_app) == 0, within_s=30, what="the cancelled run's job done")
    assert _statuses(cluster, [waiting]) == {waiting: "cancelled"}
    assert "n=200" not in recorder.lines(), "a cancelled queued run never executes"


def test_serve_with_its_own_workers_runs_fires_as_procrastinate_jobs(
    procrastinated: Cluster, keys: Keys, recorder: Recorder, ledger_app: App
) -> None:
    cluster = procrastinated
    server = cluster.serve("--workers", "2")
    client = cluster.client(server, keys.owner)
    client.agents.create("quick", "x", model_settings=effect_settings(recorder.url, 0))
    fired = [client.agents.fire("quick", event_payload={"n": n}).run_id for n in range(6)]
    rows = eventually(lambda: cluster.all_final(fired), within_s=60, what="6 runs final")
    assert {rows[run_id].status for run_id in fired} == {"succeeded"}
    with ledger_app.store.connect() as conn:
        assert {row.executor for row in worker_store.list_workers(conn)} == {"procrastinate"}
    assert Counter(recorder.lines()) == Counter(f"n={n}" for n in range(6))
    eventually(lambda: _jobs(ledger_app) == 0, within_s=30, what="succeeded jobs deleted")
    assert server.terminate() in (0, -15)


def test_a_killed_procrastinate_worker_loses_its_runs_to_the_lease_and_its_jobs_to_the_survivor(
    procrastinated: Cluster, keys: Keys, recorder: Recorder, ledger_app: App
) -> None:
    cluster = procrastinated
    api = cluster.serve("--no-workers")
    first = cluster.worker("--concurrency", "20")
    client = cluster.client(api, keys.owner)
    client.agents.create("slow", "x", model_settings=effect_settings(recorder.url, 60))
    client.agents.create("quick", "x", model_settings=effect_settings(recorder.url, 0))
    in_flight = [client.agents.fire("slow", event_payload={"n": n}).run_id for n in range(20)]
    eventually(
        lambda: (
            (len(recorder.lines()), Counter(_statuses(cluster, in_flight).values()))
            == (20, {"running": 20})
        ),
        within_s=30,
        what="20 runs in flight on the first worker, each past its side effect",
    )
    queued = [client.agents.fire("quick", event_payload={"n": n}).run_id for n in range(20, 70)]
    assert set(_statuses(cluster, queued).values()) == {"queued"}, "the only worker is full"
    assert (_jobs(ledger_app, "doing"), _jobs(ledger_app, "todo")) == (20, 50)

    first.kill()
    cluster.worker("--concurrency", "8")

    rows = eventually(
        lambda: cluster.all_final(in_flight + queued), within_s=120, what="every run final"
    )
    for run_id in in_flight:
        row = rows[run_id]
        assert (row.status, row.error_type) == ("failed", "worker_lost"), row.error_message
        assert row.worker_id in row.error_message and "not re-run" in row.error_message
    survivors = {rows[run_id].worker_id for run_id in queued}
    assert all(rows[run_id].status == "succeeded" for run_id in queued)
    assert len(survivors) == 1 and rows[in_flight[0]].worker_id not in survivors
    effects = Counter(recorder.lines())
    assert sorted(int(line[2:]) for line in effects) == list(range(70)), "none lost"
    assert set(effects.values()) == {1}, "none ran twice"
    # The dead worker's taken jobs are ended by the survivor, not left "doing" forever.
    eventually(
        lambda: (_jobs(ledger_app, "doing"), _jobs(ledger_app, "failed")) == (0, 20),
        within_s=60,
        what="the dead worker's 20 jobs ended failed",
    )


def test_a_stopped_procrastinate_worker_finishes_its_run_and_leaves_its_jobs(
    procrastinated: Cluster, keys: Keys, recorder: Recorder, ledger_app: App
) -> None:
    cluster = procrastinated
    api = cluster.serve("--no-workers")
    worker = cluster.worker("--concurrency", "1", "--grace", "30")
    client = cluster.client(api, keys.owner)
    client.agents.create("slow", "x", model_settings=effect_settings(recorder.url, 3))
    client.agents.create("quick", "x", model_settings=effect_settings(recorder.url, 0))
    running = client.agents.fire("slow", event_payload={"n": 0}).run_id
    eventually(lambda: recorder.lines() == ["n=0"], within_s=30, what="the slow run started")
    waiting = [client.agents.fire("quick", event_payload={"n": n}).run_id for n in (1, 2, 3)]

    assert worker.terminate() == 0, worker.log.read_text()[-2000:]
    rows = cluster.runs()
    assert rows[running].status == "succeeded", "finished within the grace period"
    assert _statuses(cluster, waiting) == dict.fromkeys(waiting, "queued")
    assert _jobs(ledger_app, "todo") == 3, "jobs not started stay for the next worker"

    cluster.worker("--concurrency", "2")
    rows = eventually(lambda: cluster.all_final(waiting), within_s=60, what="the next worker")
    assert {rows[run_id].status for run_id in waiting} == {"succeeded"}
    assert Counter(recorder.lines()) == Counter(f"n={n}" for n in range(4))


def test_the_agent_limit_holds_across_procrastinate_workers(
    procrastinated: Cluster, keys: Keys, recorder: Recorder
) -> None:
    cluster = procrastinated
    cluster.extra_env["CAIRN_AGENT_CONCURRENCY"] = "1"
    api = cluster.serve("--no-workers")
    cluster.worker("--concurrency", "4")
    cluster.worker("--concurrency", "4")
    client = cluster.client(api, keys.owner)
    client.agents.create("single", "x", model_settings=effect_settings(recorder.url, 0.5))
    fired = [client.agents.fire("single", event_payload={"n": n}).run_id for n in range(4)]
    rows = eventually(lambda: cluster.all_final(fired), within_s=90, what="4 runs final")
    assert {rows[run_id].status for run_id in fired} == {"succeeded"}, "they waited, not dropped"
    spans = sorted((rows[run_id].started_at, rows[run_id].finished_at) for run_id in fired)
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert ended <= started, f"two runs of the agent at once: {spans}"
    assert Counter(recorder.lines()) == Counter(f"n={n}" for n in range(4))


class _FailsAfterDeferring(ProcrastinateBackend):
    """Defers as the backend does, checks the job is visible inside the transaction, then
    fails the fire (a write after the defer that the database refused)."""

    seen_inside: list[str]

    def enqueue(self, conn: object, runs: Sequence[Run]) -> None:
        super().enqueue(conn, runs)  # type: ignore[arg-type]
        self.seen_inside = [
            status
            for run in runs
            for status in _job_statuses(conn, run.run_id)  # type: ignore[arg-type]
        ]
        raise RuntimeError("the fire's transaction fails after the defer")


def test_the_job_is_deferred_in_the_fire_transaction(
    procrastinated: Cluster, keys: Keys, ledger_app: App
) -> None:
    client = procrastinated.client(procrastinated.serve("--no-workers"), keys.owner)
    client.agents.create("quick", "x", model_settings=effect_settings("http://127.0.0.1:9/", 0))
    ledger_app.executor = ProcrastinateBackend(ledger_app)
    kept = run_service.start_fire(ledger_app, "default", "quick", {"n": 1}, kind="manual").run
    with ledger_app.store.connect() as conn:
        assert _job_statuses(conn, kept.run_id) == ["todo"]

    failing = _FailsAfterDeferring(ledger_app)
    ledger_app.executor = failing
    before = _jobs(ledger_app)
    with pytest.raises(RuntimeError, match="after the defer"):
        run_service.start_fire(ledger_app, "default", "quick", {"n": 2}, kind="manual")
    assert failing.seen_inside == ["todo"], "the job was written in the fire's transaction"
    assert _jobs(ledger_app) == before, "and rolled back with it"
    listed = client.agents.runs.list("quick").runs
    assert [run.run_id for run in listed] == [kept.run_id], "no run row either"


@pytest.mark.parametrize("command", [["worker"], ["serve", "--no-workers", "--port", "0"]])
def test_on_sqlite_the_procrastinate_executor_is_refused_at_start(
    tmp_path: Path, command: list[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "CAIRN_HOME": str(home),
        "CAIRN_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "CAIRN_EXECUTOR": "procrastinate",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run([CAIRN, *command], env=env, capture_output=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "needs PostgreSQL" in lines[0], done.stderr.decode()
