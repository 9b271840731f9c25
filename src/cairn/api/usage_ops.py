"""Cost-watch operations (declared in ``cairn.api.table``).

Roles: viewers read usage, thresholds, runaways and enforcements; editors set and clear
thresholds and enforce them (enforcing pauses triggers, which editors may do anyway).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cairn.api.operations import JSON, Caller

if TYPE_CHECKING:
    from cairn.wire import usage as wire_usage


def get_usage(
    caller: Caller,
    *,
    since: str = "24h",
    by: str = "agent",
    agent: str | None = None,
    trigger_id: str | None = None,
) -> JSON:
    """Tokens, runs and estimated cost over the window ``since`` (``24h``, ``7d`` …)."""
    from cairn.durations import parse_duration
    from cairn.services.usage import usage

    report = usage(
        caller.app,
        caller.sandbox,
        since_s=parse_duration(since),
        by=by,
        agent=agent,
        trigger_id=trigger_id,
    )
    return report.to_dict()


def get_threshold(caller: Caller, slug: str) -> JSON:
    """The agent's threshold, or ``None``."""
    from cairn.services.usage import get_threshold as get

    threshold = get(caller.app, caller.sandbox, slug)
    return threshold.to_dict() if threshold is not None else None


def put_threshold(caller: Caller, slug: str, body: wire_usage.ThresholdSet) -> JSON:
    """Set (replace) the agent's threshold (editor)."""
    from cairn.services.usage import set_threshold

    return set_threshold(caller.app, caller.sandbox, slug, **body.model_dump()).to_dict()


def delete_threshold(caller: Caller, slug: str) -> JSON:
    """Stop watching the agent (editor)."""
    from cairn.services.usage import clear_threshold

    return {"agent_slug": slug, "cleared": clear_threshold(caller.app, caller.sandbox, slug)}


def list_thresholds(caller: Caller) -> JSON:
    """Every threshold of the sandbox."""
    from cairn.services.usage import list_thresholds as list_all

    return [threshold.to_dict() for threshold in list_all(caller.app, caller.sandbox)]


def list_runaways(caller: Caller) -> JSON:
    """Agents over a threshold in the last hour."""
    from cairn.services.usage import runaway_agents

    return [flag.to_dict() for flag in runaway_agents(caller.app, caller.sandbox)]


def enforce(caller: Caller) -> JSON:
    """Pause the triggers of runaway agents whose threshold says so, recording why (editor)."""
    from cairn.services.usage import enforce_thresholds

    return [flag.to_dict() for flag in enforce_thresholds(caller.app, caller.sandbox)]


def list_enforcements(caller: Caller, *, agent: str | None = None, limit: int = 50) -> JSON:
    """Enforcements that paused triggers, newest first."""
    from cairn.errors import UsageError
    from cairn.services.usage import list_enforcements as list_all

    limit = int(limit)
    if not 1 <= limit <= 500:
        raise UsageError(f"limit {limit} is out of range: use 1 to 500")
    found = list_all(caller.app, caller.sandbox, agent, limit=limit)
    return [enforcement.to_dict() for enforcement in found]
