"""The ledger store: the only package that imports SQLAlchemy or writes SQL.

Functions are verb-named and take a ``Connection`` (``create_run``, ``list_runs``,
``append_events``); ``Store`` opens the engine and hands out transactions.
"""

from cairn.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
