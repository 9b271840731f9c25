"""The ``procrastinate`` backend (PostgreSQL): not available in this build yet.

Selecting it fails at start with a clear message rather than silently executing nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from cairn.errors import UsageError

if TYPE_CHECKING:
    from cairn.services.app import App


def ProcrastinateBackend(app: App) -> NoReturn:
    """Refuses: this build has only the ``embedded`` backend."""
    raise UsageError(
        "CAIRN_EXECUTOR=procrastinate is not available in this build; use 'embedded' "
        "(works on SQLite and PostgreSQL, with `cairn worker` processes for scale-out)"
    )
