"""Execution backends: who takes the ledger's queued runs and executes them.

A fire is accepted by writing its run row ``queued`` in the same transaction as its event
and decisions (``cairn.services.ingest``, ``cairn.services.runs``); from then on the run is
never dropped. An execution backend makes such runs reach a worker:

- ``embedded`` (default): workers claim queued runs straight from the ledger, on SQLite or
  PostgreSQL, inside ``cairn serve`` or as ``cairn worker`` processes.
- ``procrastinate`` (PostgreSQL): each run is also a procrastinate job, deferred inside the
  fire's transaction; ``cairn worker`` processes run procrastinate workers.

Backends are looked up by name in ``executors`` (``CAIRN_EXECUTOR``), the same registry
third-party plugins register into (entry-point group ``cairn.executors``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cairn.errors import UsageError
from cairn.execution.base import ExecutionBackend
from cairn.registry import Registry

if TYPE_CHECKING:
    from cairn.services.app import App

__all__ = ["ExecutionBackend", "UnknownExecutor", "executors", "open_executor"]


class UnknownExecutor(UsageError):
    """``CAIRN_EXECUTOR`` names no installed execution backend."""


ExecutorFactory = Callable[["App"], ExecutionBackend]

executors: Registry[ExecutorFactory] = Registry(
    "execution backend (CAIRN_EXECUTOR)",
    "cairn.executors",
    UnknownExecutor,
    {
        "embedded": "cairn.execution.embedded:EmbeddedBackend",
        "procrastinate": "cairn.execution.procrastinate:ProcrastinateBackend",
    },
)


def open_executor(app: App) -> ExecutionBackend:
    """The backend ``app.settings.executor`` names."""
    return executors.get(app.settings.executor)(app)
