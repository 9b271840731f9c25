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


def _ours(name: str | None, type_: str, parents: dict[str, str | None]) -> bool:
    """Procrastinate's own tables (its schema.sql, applied beside the ledger when
    ``CAIRN_EXECUTOR=procrastinate``; other tests on this database may have done so) are
    not the ledger's to declare."""
    table = name if type_ == "table" else parents.get("table_name")
    return not (table or "").startswith("procrastinate_")


def test_migrated_database_matches_the_declared_tables(store: Store) -> None:
    with store.connect() as conn:
        assert current_revision(conn) == SCHEMA_HEAD
        context = MigrationContext.configure(
            conn, opts={"compare_type": False, "include_name": _ours}
        )
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_a_fresh_ledger_has_the_default_sandbox(store: Store) -> None:
    with store.connect() as conn:
        assert list_sandbox_ids(conn) == ["default"]
