"""The dashboard's reversible actions: replay a run (with an edited payload), pause or
resume a trigger, switch sandbox (``cairn.web.switching``).

Plain form posts, CSRF-checked like the test fire, answered with a redirect (303) to the
page that shows the result, so they work without JavaScript. Replays start a ``test`` run
through the same service call as a test fire (``start_fire`` with ``replay_of``); pausing
goes through the trigger operation, which checks the editor role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from cairn.api import operations as ops
from cairn.api.table import acall
from cairn.web import sessions, switching
from cairn.web.pages import _parse_payload, _start_test_run, guarded
from cairn.web.sessions import Session

router = APIRouter(include_in_schema=False)


async def _posted(
    request: Request, act: Callable[[Session, dict[str, str]], Awaitable[Response]]
) -> Response:
    """A CSRF-checked form post: ``act`` with the session and the form's fields (to the
    login page without a session, an error page for a ``CairnError``)."""

    async def build(session: Session) -> Response:
        fields = await sessions.form_fields(request)
        sessions.check_csrf(session, request, fields.get("csrf"))
        return await act(session, fields)

    return await guarded(request, build)


@router.post("/runs/{run_id}/replay")
async def replay(request: Request, run_id: str) -> Response:
    """Fire the run's agent again on the (edited) payload as a test run pointing back at
    this one, and open it."""

    async def act(session: Session, fields: dict[str, str]) -> Response:
        run: dict[str, Any] = await anyio.to_thread.run_sync(ops.get_run, session.caller, run_id)
        text = fields.get("event_payload")
        payload = run["event_payload"] if text is None else _parse_payload(text)
        new_id = await _start_test_run(session, run["agent_slug"], payload, replay_of=run_id)
        return RedirectResponse(f"/runs/{new_id}", status_code=303)

    return await _posted(request, act)


async def _set_status(
    request: Request, trigger_id: str, status: Literal["active", "paused"]
) -> Response:
    async def act(session: Session, _: dict[str, str]) -> Response:
        trigger: dict[str, Any] = await acall(
            "update_trigger", session.caller, {"trigger_id": trigger_id}, {"status": status}
        )
        slug = trigger.get("agent_slug") or ""
        return RedirectResponse(f"/agents/{slug}#trigger-{trigger_id}", status_code=303)

    return await _posted(request, act)


@router.post("/triggers/{trigger_id}/pause")
async def pause_trigger(request: Request, trigger_id: str) -> Response:
    """Pause a trigger (editor): its events are recorded as ``paused``, nothing fires."""
    return await _set_status(request, trigger_id, "paused")


@router.post("/triggers/{trigger_id}/resume")
async def resume_trigger(request: Request, trigger_id: str) -> Response:
    """Resume a paused trigger (editor)."""
    return await _set_status(request, trigger_id, "active")


@router.post("/sandbox")
async def switch_sandbox(request: Request) -> Response:
    """Open the chosen sandbox (admins and the local operator only) and go on to ``next``."""

    async def act(session: Session, fields: dict[str, str]) -> Response:
        response = RedirectResponse(sessions.safe_next(fields.get("next")), status_code=303)
        await anyio.to_thread.run_sync(
            switching.switch, request, session, fields.get("sandbox", ""), response
        )
        return response

    return await _posted(request, act)
