"""The Concierge's operation (declared in ``cairn.api.table``).

Anyone who may read a sandbox may ask (a viewer too, as viewers may test-fire); what the
Concierge then changes is checked against the asker's role: pausing a trigger needs an
editor, as it does through the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cairn.api.operations import JSON, Caller

if TYPE_CHECKING:
    from cairn.wire.concierge import AskRequest

ASK_DOC = """Ask the Concierge in plain English ("Why didn't run run_… use any tools?").

With a Concierge agent configured (an agent slugged ``concierge``, or named by
``CAIRN_CONCIERGE_AGENT``, whose tool sources include ``cairn``) the agent answers with
Cairn's own operations as its tools, and its run is in the ledger (``concierge_run_id``);
otherwise a deterministic interpreter answers. Both answer from ledger data and cite run
ids. Reversible changes (pausing a trigger) need an editor key; nothing is ever destroyed:
the answer gives the command instead."""


async def ask(caller: Caller, body: AskRequest) -> JSON:
    """Answer the question from the ledger (see ``cairn.services.concierge``)."""
    from cairn.services.concierge import ask as answer

    reply = await answer(
        caller.app,
        caller.sandbox,
        body.question,
        role=caller.principal.role,
        offline=body.offline,
        confirmed=body.yes,
    )
    return reply.to_dict()
