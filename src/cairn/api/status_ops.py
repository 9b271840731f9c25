"""The execution status operation (``GET …/status``), for the HTTP route and the SDK's
in-process transport alike. Viewers may read it."""

from __future__ import annotations

from typing import Any

from cairn.api.operations import JSON, Caller


def get_status(caller: Caller) -> JSON:
    """Backlog of the caller's sandbox, workers alive with their last heartbeat."""
    from cairn.services.status import execution_status

    return execution_status(caller.app, caller.sandbox)


LOCAL_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/status", lambda c, p, j, m: get_status(c)),
]
