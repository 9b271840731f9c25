"""Who calls: the FastAPI dependencies that authenticate a request (an API key, or the
dashboard's session cookie with its CSRF check) and scope it to the path's sandbox."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, Request

from cairn import errors
from cairn.api.operations import Caller
from cairn.domain.keys import Principal
from cairn.services.access import authenticate
from cairn.services.app import App
from cairn.services.sessions import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    authenticate_session,
)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def request_principal(request: Request, authorization: str | None) -> Principal:
    """The caller: an API key in the ``Authorization`` header, else the dashboard's session
    cookie (``cairn.services.sessions``: a session token, never a key). The cookie is
    SameSite=Strict; on top of that, a method other than GET/HEAD must echo the CSRF cookie
    in ``X-Cairn-CSRF``, which only a page of this origin can read, so no other site can
    make a browser act with it."""
    cairn: App = request.app.state.cairn
    if authorization:
        return authenticate(cairn, bearer_token(authorization))
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return authenticate(cairn, None)  # the "missing API key" answer
    if request.method not in ("GET", "HEAD"):
        expected = request.cookies.get(CSRF_COOKIE) or ""
        sent = request.headers.get(CSRF_HEADER) or ""
        if not expected or not secrets.compare_digest(expected.encode(), sent.encode()):
            raise errors.Forbidden(
                f"a cookie-authenticated {request.method} needs the {CSRF_HEADER} header"
            )
    return authenticate_session(cairn, token)


def caller_for(request: Request, sandbox: str, authorization: str | None) -> Caller:
    """Authenticate and scope to ``sandbox``: another sandbox's caller gets 404, never data."""
    cairn: App = request.app.state.cairn
    principal = request_principal(request, authorization)
    if principal.sandbox_id != sandbox:  # the key's own sandbox is no secret to its holder
        raise errors.NotFound(
            f"no sandbox {sandbox!r} for this key: it belongs to sandbox "
            f"{principal.sandbox_id!r} (--sandbox {principal.sandbox_id})"
        )
    return Caller(cairn, principal)


def current_caller(
    request: Request,
    sandbox: str,
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    """FastAPI dependency for sandbox-scoped routes."""
    return caller_for(request, sandbox, authorization)


def key_caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """FastAPI dependency for routes outside a sandbox path (the key's own sandbox)."""
    cairn: App = request.app.state.cairn
    return Caller(cairn, request_principal(request, authorization))


CallerDep = Annotated[Caller, Depends(current_caller)]
KeyCallerDep = Annotated[Caller, Depends(key_caller)]
