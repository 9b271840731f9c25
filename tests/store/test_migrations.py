"""The one Alembic history builds the schema the code declares, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cairn.store import Store
from cairn.store.engine import SCHEMA_HEAD, current_revision
from cairn.store.migrations.runner import script_head
from cairn.store.sandboxes import list_sandbox_ids
from cairn.store.schema import metadata


def test_schema_head_constant_matches_the_newest_migration(store: Store) -> None:
    assert script_head(store.engine) == SCHEMA_HEAD


def test_migrated_database_matches_the_declared_tables(store: Store) -> None:
    with store.connect() as conn:
        assert current_revision(conn) == SCHEMA_HEAD
        differences = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": False}), metadata
        )
    assert differences == []


def test_a_fresh_ledger_has_the_default_sandbox(store: Store) -> None:
    with store.connect() as conn:
        assert list_sandbox_ids(conn) == ["default"]
