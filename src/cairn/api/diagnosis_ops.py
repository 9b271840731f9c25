"""The ``explain`` and ``doctor`` operations, called by the HTTP routes
(``cairn.api.diagnosis_routes``) and the SDK's in-process transport (``LOCAL_ROUTES``).

All are reads: any role may call them. ``doctor`` connects to the agents' tool sources to
list their tools, as ``agent tools`` does, and changes nothing.
"""

from __future__ import annotations

from typing import Any

from cairn.api.operations import JSON, Caller
from cairn.errors import UsageError


def explain_run(caller: Caller, run_id: str) -> JSON:
    """Why a run did what it did."""
    from cairn.services.diagnosis import explain_run as explain

    return explain(caller.app, caller.sandbox, run_id).to_dict()


def explain_event(caller: Caller, event_id: str) -> JSON:
    """Why an event fired what it fired, or nothing."""
    from cairn.services.diagnosis import explain_event as explain

    return explain(caller.app, caller.sandbox, event_id).to_dict()


def why_not_fired(caller: Caller, slug: str) -> JSON:
    """Why an agent did (not) fire on its last event."""
    from cairn.services.diagnosis import why_not_fired as explain

    return explain(caller.app, caller.sandbox, slug).to_dict()


async def doctor(caller: Caller, agent: str | None = None, quiet_days: Any = 7) -> JSON:
    """The sandbox scan (or one agent's)."""
    from cairn.services.diagnosis import doctor as scan

    try:
        days = float(quiet_days)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"quiet_days {quiet_days!r} is not a number of days") from None
    return (await scan(caller.app, caller.sandbox, agent, days)).to_dict()


LOCAL_ROUTES: list[tuple[str, str, Any]] = [
    (
        "GET",
        r"/runs/(?P<run_id>[^/]+)/explain",
        lambda c, p, j, m: explain_run(c, m["run_id"]),
    ),
    (
        "GET",
        r"/events/(?P<event_id>[^/]+)/explain",
        lambda c, p, j, m: explain_event(c, m["event_id"]),
    ),
    (
        "GET",
        r"/agents/(?P<slug>[^/]+)/why-not-fired",
        lambda c, p, j, m: why_not_fired(c, m["slug"]),
    ),
    (
        "GET",
        "/doctor",
        lambda c, p, j, m: doctor(c, p.get("agent"), p.get("quiet_days", 7)),
    ),
]
"""In-process routes for ``cairn.client.local`` (method, path regex, handler)."""
