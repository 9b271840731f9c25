"""The plain-sqlite3 listing path returns exactly what the SQLAlchemy store returns."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from cairn.config import Settings
from cairn.domain.runs import Run, RunFilter
from cairn.errors import NotFound
from cairn.services.app import App
from cairn.store import open_store
from cairn.store import runs as run_store
from cairn.store.rows import RUN_COLUMNS
from cairn.store.schema import runs
from cairn.store.sqlite_reader import SqliteReader, sqlite_path
from tests.store.test_run_ledger import insert, make_agent, make_run


def test_row_columns_match_the_runs_table() -> None:
    assert tuple(c.name for c in runs.c) == RUN_COLUMNS


def test_sqlite_reader_lists_exactly_what_the_store_lists(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = open_store(f"sqlite:///{path}")
    agent = make_agent(store)
    other = make_agent(store, "other")
    shapes = itertools.product(["succeeded", "failed"], ["test", "trigger"], [None, "trg_a"])
    batch: list[Run] = []
    for status, kind, trigger in itertools.islice(itertools.cycle(shapes), 60):
        run = make_run(agent, status=status, kind=kind, trigger_id=trigger)  # type: ignore[arg-type]
        run.event_payload = {"n": len(batch), "nested": {"ok": True}}
        batch.append(run)
    batch.append(make_run(other))
    insert(store, batch)
    reader = SqliteReader.open(path)
    assert reader is not None
    middle = batch[30].run_id
    filters = [
        RunFilter("default"),
        RunFilter("default", agent.agent_id),
        RunFilter("default", agent.agent_id, limit=7),
        RunFilter("default", agent.agent_id, status="failed"),
        RunFilter("default", agent.agent_id, kind="trigger", trigger_id="trg_a"),
        RunFilter("default", trigger_id="trg_a", before=middle),
        RunFilter("default", agent.agent_id, since=time.time() - 3600, until=time.time() + 1),
        RunFilter("default", agent.agent_id, until=time.time() - 3600),
        RunFilter("elsewhere"),
    ]
    with store.connect() as conn:
        for where in filters:
            expected = [r.to_dict() for r in run_store.list_runs(conn, where)]
            assert [r.to_dict() for r in reader.list_runs(where)] == expected, where
    assert reader.agent_id("default", "support") == agent.agent_id
    try:
        reader.agent_id("default", "nobody")
    except NotFound as error:
        assert "no agent 'nobody'" in str(error)
    else:
        raise AssertionError("NotFound expected")
    reader.close()
    store.close()


def test_app_uses_the_fast_reader_only_for_an_up_to_date_sqlite_file(tmp_path: Path) -> None:
    missing = App(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'new.db'}"))
    assert type(missing.reader).__name__ == "StoreReader"  # created and migrated instead
    missing.close()
    fresh = App(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'new.db'}"))
    assert type(fresh.reader).__name__ == "SqliteReader"
    fresh.close()
    assert sqlite_path("postgresql://x@h/db") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert SqliteReader.open(tmp_path / "not-there.db") is None
