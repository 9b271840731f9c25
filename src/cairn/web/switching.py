"""Which sandboxes a dashboard session may switch to, and the switch itself.

A session belongs to one sandbox (``cairn.web.sessions``). The instance's admins, the
owners of ``default``, may already make an owner key in any sandbox
(``cairn.api.operations.create_key``) and see every sandbox (``list_sandboxes``); so may the
local operator of the embedded server, whose automatic login is to the configured sandbox.
For them the header offers the other sandboxes, and a switch opens a new session, as owner
of the chosen sandbox, tied to the same key (revoking that key ends it too), and closes the
old one. Everybody else switches by logging in with another key.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from cairn.domain.keys import Principal
from cairn.errors import Forbidden
from cairn.web import sessions
from cairn.web.sessions import Session

ADMIN_SANDBOX = "default"


def _is_admin(request: Request, principal: Principal) -> bool:
    if principal.role != "owner":
        return False
    app = sessions.cairn_of(request)
    if principal.key_id is None:
        # A session of the automatic local login (or switched from one): the operator,
        # for as long as the request still comes from this machine with the login on.
        return ADMIN_SANDBOX in sessions.local_sandboxes(request)
    from cairn.services.access import list_keys

    return any(
        key.key_id == principal.key_id and key.role == "owner" and key.revoked_at is None
        for key in list_keys(app, ADMIN_SANDBOX)
    )


def switchable(request: Request, session: Session) -> list[str]:
    """The sandboxes this session may switch to (its own included), or ``[]``."""
    if not _is_admin(request, session.caller.principal):
        return []
    from cairn.services.access import list_sandboxes

    return [sandbox_id for sandbox_id, _ in list_sandboxes(sessions.cairn_of(request))]


def switch(request: Request, session: Session, target: str, response: Response) -> None:
    """Open a session as owner of ``target`` on ``response``, close this one; ``Forbidden``
    when this session may not switch there."""
    from cairn.services.sessions import open_session

    if target not in switchable(request, session):
        raise Forbidden(f"this login cannot switch to sandbox {target!r}: log in with its key")
    principal = session.caller.principal
    token = open_session(
        sessions.cairn_of(request), Principal(target, "owner", key_id=principal.key_id)
    )
    sessions.log_out(request)
    sessions.set_login_cookies(request, response, token, sessions.new_csrf())
