"""``cairn runs prune``: one sandbox only, asks first, a dry run, and retention that covers
received events and their decisions too (issue 15, point 9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cairn.domain.runs import RunFilter
from cairn.domain.triggers import Event
from cairn.ids import id_at
from cairn.store import Store
from cairn.store import events as event_store
from cairn.store import runs as run_store
from tests.newcomer.conftest import Cli
from tests.store.test_run_ledger import insert, make_agent, make_run


def _old_ledger(store: Store) -> dict[str, str]:
    """An old finished run and an old event in sandboxes ``default`` and ``other``."""
    long_ago = datetime.now(UTC) - timedelta(days=40)
    runs: dict[str, str] = {}
    for sandbox in ("default", "other"):
        run = make_run(make_agent(store, sandbox_id=sandbox), created_at=long_ago)
        insert(store, [run])
        runs[sandbox] = run.run_id
        with store.begin() as conn:
            event_store.insert_event(
                conn,
                Event(
                    id_at("evt", long_ago.timestamp()),
                    sandbox,
                    "src_x",
                    "ping",
                    {"n": 1},
                    received_at=long_ago,
                ),
            )
    return runs


def _counts(store: Store, sandbox: str) -> tuple[int, int]:
    with store.connect() as conn:
        return (
            len(run_store.list_runs(conn, RunFilter(sandbox, limit=100))),
            len(event_store.list_events(conn, sandbox, limit=100)),
        )


def test_prune_is_scoped_to_the_sandbox_asks_first_and_covers_events(
    cli: Cli, store: Store
) -> None:
    runs = _old_ledger(store)

    unasked = cli("runs", "prune", "--older-than", "30d")
    assert unasked.exit_code == 2
    assert "pass --yes" in unasked.stderr
    assert _counts(store, "default") == (1, 1)

    dry = cli("runs", "prune", "--older-than", "30d", "--dry-run", "--json").json()
    assert (dry["runs"], dry["events"], dry["dry_run"]) == (1, 1, True)
    assert _counts(store, "default") == (1, 1)

    done = cli("runs", "prune", "--older-than", "30d", "--yes")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.strip() == "deleted 1 runs and 1 events in sandbox default"
    assert _counts(store, "default") == (0, 0)
    assert _counts(store, "other") == (1, 1), "another sandbox's ledger is not touched"
    with store.connect() as conn:
        assert run_store.get_run(conn, "other", runs["other"]).run_id == runs["other"]


def test_prune_refuses_an_age_that_would_empty_the_ledger(cli: Cli) -> None:
    for age in ("0s", "59m"):
        refused = cli("runs", "prune", "--older-than", age, "--yes")
        assert refused.exit_code == 2
        assert "at least 1h" in refused.stderr
