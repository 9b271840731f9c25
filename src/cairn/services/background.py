"""Tasks ``cairn serve`` runs beside the API for as long as it serves.

Each entry names a coroutine function ``task(app)`` that loops until cancelled (the server's
shutdown cancels it). A feature that needs to act on its own, without a command or cron,
adds a line here rather than editing the server's start-up, so features stay apart.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from cairn.services.app import App

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

BACKGROUND_TASKS: tuple[tuple[str, str], ...] = (
    ("cairn.services.usage_watch", "watch_thresholds"),
)
"""(module, function) of each task; imported when the server starts."""


def background_tasks() -> list[Callable[[App], Coroutine[Any, Any, None]]]:
    """The registered tasks, imported."""
    found: list[Callable[[App], Coroutine[Any, Any, None]]] = []
    for module, name in BACKGROUND_TASKS:
        found.append(getattr(importlib.import_module(module), name))
    return found


def start_background_tasks(group: TaskGroup, app: App) -> None:
    """Start every registered task in ``group`` (cancelled with it)."""
    for task in background_tasks():
        group.start_soon(task, app)
