"""The ledger store: the only package that writes SQL.

Functions are verb-named and take a ``Connection`` (``create_run``, ``list_runs``,
``append_events``); ``Store`` opens the engine and hands out transactions. SQLAlchemy is
imported only by the modules that need it, so the cold read path (``sqlite_reader``)
never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cairn.store.engine import Store, open_store

__all__ = ["Store", "open_store"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cairn.store import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'cairn.store' has no attribute {name!r}")
