"""The Concierge's operation, called by its HTTP route (``cairn.api.concierge_routes``) and
by the SDK's in-process transport (``LOCAL_ROUTES``) alike.

Anyone who may read a sandbox may ask (a viewer too, as viewers may test-fire); what the
Concierge then changes is checked against the asker's role: pausing a trigger needs an
editor, as it does through the API.
"""

from __future__ import annotations

from typing import Any

from cairn.api.operations import JSON, Caller
from cairn.domain.keys import require


async def ask(caller: Caller, question: str, *, offline: bool = False, yes: bool = False) -> JSON:
    """Answer ``question`` from the ledger (see ``cairn.services.concierge``)."""
    from cairn.services.concierge import ask as answer

    require(caller.principal, "viewer", "ask the Concierge")
    reply = await answer(
        caller.app,
        caller.sandbox,
        question,
        role=caller.principal.role,
        offline=offline,
        confirmed=yes,
    )
    return reply.to_dict()


def _ask_route(caller: Caller, params: dict[str, Any], json: Any, match: dict[str, str]) -> Any:
    from cairn.client.local import _body
    from cairn.wire.concierge import AskRequest

    body = _body(AskRequest, json)
    return ask(caller, body.question, offline=body.offline, yes=body.yes)


LOCAL_ROUTES = [("POST", "/ask", _ask_route)]
"""In-process routes (``cairn.client.local`` adds them to its table)."""
