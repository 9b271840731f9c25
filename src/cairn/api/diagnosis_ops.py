"""The ``explain`` and ``doctor`` operations (declared in ``cairn.api.table``).

All are reads: any role may call them. ``doctor`` connects to the agents' tool sources to
list their tools, as ``agent tools`` does, and changes nothing.
"""

from __future__ import annotations

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


async def doctor(caller: Caller, agent: str | None = None, quiet_days: float = 7) -> JSON:
    """The sandbox scan (or one agent's)."""
    from cairn.services.diagnosis import doctor as scan

    try:
        days = float(quiet_days)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"quiet_days {quiet_days!r} is not a number of days") from None
    return (await scan(caller.app, caller.sandbox, agent, days)).to_dict()
