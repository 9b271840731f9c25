"""HTTP route of ``cairn status``, mounted by ``cairn.api.app`` (``EXTRA_ROUTERS``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cairn.api import status_ops as ops
from cairn.api.app import CallerDep
from cairn.api.app import problem_responses as _problems
from cairn.wire.status import ExecutionStatus

router = APIRouter(prefix="/api/v1/sandboxes/{sandbox}", tags=["status"])


@router.get("/status", response_model=ExecutionStatus, responses=_problems())
def get_status(caller: CallerDep) -> Any:
    """The sandbox's backlog (queued, running, oldest queued run and its age) and every
    worker on the ledger with its last heartbeat and whether it is alive."""
    return ops.get_status(caller)
