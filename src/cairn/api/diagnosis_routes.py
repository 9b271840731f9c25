"""HTTP routes for ``explain`` and ``doctor``: thin wrappers over
``cairn.api.diagnosis_ops``, mounted by ``cairn.api.app`` (``EXTRA_ROUTERS``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from cairn.api import diagnosis_ops as ops
from cairn.api.app import CallerDep, problem_responses
from cairn.wire import diagnosis as wire_diagnosis

PREFIX = "/api/v1/sandboxes/{sandbox}"


_problems = problem_responses


router = APIRouter(prefix=PREFIX, tags=["diagnosis"])


@router.get(
    "/runs/{run_id}/explain", response_model=wire_diagnosis.Explanation, responses=_problems()
)
def explain_run(caller: CallerDep, run_id: str) -> Any:
    """Why the run did what it did: the cause and the fix, citing the run, event and trace
    fields each finding rests on."""
    return ops.explain_run(caller, run_id)


@router.get(
    "/events/{event_id}/explain",
    response_model=wire_diagnosis.Explanation,
    responses=_problems(),
)
def explain_event(caller: CallerDep, event_id: str) -> Any:
    """Why the event fired what it fired, or nothing: each trigger's decision (filtered out
    by which filter, rate-limited, paused, archived), no trigger, or a refused delivery."""
    return ops.explain_event(caller, event_id)


@router.get(
    "/agents/{slug}/why-not-fired",
    response_model=wire_diagnosis.Explanation,
    responses=_problems(),
)
def why_not_fired(caller: CallerDep, slug: str) -> Any:
    """Why the agent did (not) fire on the last event of any source bound to it."""
    return ops.why_not_fired(caller, slug)


@router.get("/doctor", response_model=wire_diagnosis.DoctorReport, responses=_problems(400))
async def doctor(
    caller: CallerDep,
    agent: Annotated[str | None, Query(description="Only this agent (slug)")] = None,
    quiet_days: Annotated[
        float,
        Query(ge=0, le=3650, description="A trigger with no fire for this many days is quiet"),
    ] = 7,
) -> Any:
    """Scan without running anything: stale allowlists against today's catalog, sources that
    would be skipped now, paused or quiet triggers, agents whose recent runs mostly fail or
    use no tools, runaway usage. ``ok`` is false when something needs fixing."""
    return await ops.doctor(caller, agent, quiet_days)
