"""HTTP route of the Concierge: a thin wrapper over ``cairn.api.concierge_ops``, mounted by
``cairn.api.app`` (``EXTRA_ROUTERS``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cairn.api import concierge_ops as ops
from cairn.api.app import CallerDep, problem_responses
from cairn.wire.concierge import Answer, AskRequest

PREFIX = "/api/v1/sandboxes/{sandbox}"


_problems = problem_responses


router = APIRouter(prefix=PREFIX, tags=["concierge"])


@router.post("/ask", response_model=Answer, responses=_problems(400, 403))
async def ask(caller: CallerDep, body: AskRequest) -> Any:
    """Ask the Concierge in plain English ("Why didn't run run_… use any tools?").

    With a Concierge agent configured (an agent slugged ``concierge``, or named by
    ``CAIRN_CONCIERGE_AGENT``, whose tool sources include ``cairn``) the agent answers with
    Cairn's own operations as its tools, and its run is in the ledger
    (``concierge_run_id``); otherwise a deterministic interpreter answers. Both answer from
    ledger data and cite run ids. Reversible changes (pausing a trigger) need an editor
    key; nothing is ever destroyed: the answer gives the command instead."""
    return await ops.ask(caller, body.question, offline=body.offline, yes=body.yes)
