"""HTTP routes for cost-watch: thin wrappers over ``cairn.api.usage_ops``, mounted by
``cairn.api.app`` (``EXTRA_ROUTERS``) next to the main router."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from cairn.api import usage_ops as ops
from cairn.api.app import CallerDep
from cairn.api.app import problem_responses as _problems
from cairn.wire import usage as wire_usage

PREFIX = "/api/v1/sandboxes/{sandbox}"

router = APIRouter(prefix=PREFIX, tags=["usage"])


@router.get("/usage", response_model=wire_usage.UsageReport, responses=_problems())
def get_usage(
    caller: CallerDep,
    since: Annotated[str, Query(description="Window up to now: 90m, 24h, 7d, 2w")] = "24h",
    by: Annotated[str, Query(description="agent, trigger, model or hour")] = "agent",
    agent: Annotated[str | None, Query(description="Only this agent (slug)")] = None,
    trigger_id: Annotated[str | None, Query(description="Only this trigger")] = None,
) -> Any:
    """Runs, tokens in and out and estimated cost (integer micro-units) of the runs created
    in the window, grouped, each group with its tokens per hour; and the totals."""
    return ops.get_usage(caller, since=since, by=by, agent=agent, trigger_id=trigger_id)


@router.get("/thresholds", response_model=list[wire_usage.Threshold], responses=_problems())
def list_thresholds(caller: CallerDep) -> Any:
    """Every agent's cost-watch threshold in the sandbox."""
    return ops.list_thresholds(caller)


@router.get(
    "/agents/{slug}/threshold",
    response_model=wire_usage.Threshold | None,
    responses=_problems(),
)
def get_threshold(caller: CallerDep, slug: str) -> Any:
    """The agent's threshold, or null when it is not watched."""
    return ops.get_threshold(caller, slug)


@router.put(
    "/agents/{slug}/threshold",
    response_model=wire_usage.Threshold,
    responses=_problems(403),
)
def put_threshold(caller: CallerDep, slug: str, body: wire_usage.ThresholdSet) -> Any:
    """Set (replace) the agent's limits per hour: tokens in + out and/or estimated cost.
    Over either in the last hour, the agent is a runaway (``doctor`` reports it); with
    ``pause_triggers``, enforcing pauses its active triggers and records why."""
    return ops.put_threshold(caller, slug, body)


@router.delete(
    "/agents/{slug}/threshold",
    response_model=wire_usage.ThresholdCleared,
    responses=_problems(403),
)
def delete_threshold(caller: CallerDep, slug: str) -> Any:
    """Stop watching the agent (its past enforcements stay on record)."""
    return ops.delete_threshold(caller, slug)


@router.get("/runaways", response_model=list[wire_usage.RunawayFlag], responses=_problems())
def list_runaways(caller: CallerDep) -> Any:
    """Agents over a threshold in the last hour, most over first. Changes nothing."""
    return ops.list_runaways(caller)


@router.post(
    "/runaways/enforce",
    response_model=list[wire_usage.RunawayFlag],
    responses=_problems(403),
)
def enforce(caller: CallerDep) -> Any:
    """Pause the active triggers of each runaway agent whose threshold has
    ``pause_triggers``, and record why (``GET /enforcements``). Returns those agents' flags
    with the triggers paused; resume a trigger as usual once the cause is fixed."""
    return ops.enforce(caller)


@router.get("/enforcements", response_model=list[wire_usage.Enforcement], responses=_problems())
def list_enforcements(
    caller: CallerDep,
    agent: Annotated[str | None, Query(description="Only this agent (slug)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    """Threshold enforcements that paused triggers, newest first, each with its reason."""
    return ops.list_enforcements(caller, agent=agent, limit=limit)
