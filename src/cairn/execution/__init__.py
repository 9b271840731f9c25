"""Execution backends: who takes the ledger's queued runs and executes them (``embedded``,
the default, or ``procrastinate``: docs/scale-out.md). A fire writes its run ``queued`` in
the transaction of its event and decisions, so a run is never dropped; a backend makes it
reach a worker. Backends are looked up by name in ``executors`` (``CAIRN_EXECUTOR``), the
registry plugins register into (entry-point group ``cairn.executors``).
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
