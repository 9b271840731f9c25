"""The sandbox's ``cairn`` tool source (Cairn's own operations, ``cairn.tools.cairn_ops``),
stored the first time anything needs it: a Concierge question, or an agent's catalog or
doctor's scan of an agent whose ``tool_sources`` name ``cairn`` (so ``cairn agent tools
concierge`` is truthful before the first question)."""

from __future__ import annotations

from cairn.domain.sources import DataSource
from cairn.errors import UsageError
from cairn.services.app import App

__all__ = ["ensure_cairn_source"]


def ensure_cairn_source(app: App, sandbox_id: str) -> DataSource:
    """The sandbox's ``cairn`` tool source (Cairn's own operations, see
    ``cairn.tools.cairn_ops``), stored on first use, labelled ``cairn``. A ``UsageError``
    if another kind of source already holds that label."""
    from cairn.errors import AlreadyExists
    from cairn.ids import new_id
    from cairn.store import sources as source_store
    from cairn.tools.cairn_ops import KIND, LABEL, NAMESPACE

    with app.store.connect() as conn:
        existing = [s for s in source_store.list_sources(conn, sandbox_id) if s.kind == KIND]
    if existing:
        return existing[0]
    record = DataSource(new_id("src"), sandbox_id, KIND, LABEL, {"namespace": NAMESPACE})
    try:
        with app.store.begin() as conn:
            return source_store.create_source(conn, record, app.secrets)
    except AlreadyExists:
        with app.store.connect() as conn:
            taken = source_store.get_source(conn, sandbox_id, LABEL)
        if taken.kind == KIND:  # another request stored it first
            return taken
        raise UsageError(
            f"the label {LABEL!r} is taken by a {taken.kind} source ({taken.source_id}); "
            "Cairn's own tool source needs it: relabel that source first"
        ) from None
