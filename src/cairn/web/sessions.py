"""Dashboard logins: a login page takes an API key and opens a server-side session.

The browser never holds the key. ``POST /login`` checks it and opens a session
(``cairn.services.sessions``) scoped to the key's sandbox and role; the ``cairn_session``
cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) carries only the session's token. A
session expires, ends on logout, and ends when its key is revoked. A second cookie,
``cairn_csrf`` (random per login), is the double-submit token: the page's JavaScript echoes
it in ``X-Cairn-CSRF`` on every POST and the dashboard's forms carry it in a hidden field;
the API accepts the cookie on a POST only with that header (``cairn.api.dependencies``).

The automatic local login is for the single-user embedded case, and only when the operator
opted into it (``cairn serve --local-login`` or ``CAIRN_DASHBOARD_AUTOLOGIN=1``, on an
embedded SQLite ledger): a request straight from loopback (no proxy headers) to a loopback
host name gets a session of the configured sandbox, never a key. The host name check keeps
DNS-rebinding pages out; the proxy-header check keeps a reverse proxy on the same machine
from logging everybody in. It can never be a way into another sandbox, and ``/logout``
turns it off for that browser until the next explicit login.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from fastapi.responses import Response

from cairn.api.operations import Caller
from cairn.domain.keys import Principal
from cairn.errors import Forbidden, Unauthorized
from cairn.services.app import App
from cairn.services.sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL_S,
    authenticate_session,
    close_session,
    open_session,
)
from cairn.store.sandboxes import require_sandbox

AUTOLOGIN_OFF_COOKIE = "cairn_autologin"
LOOPBACK_ADDRESSES = frozenset({"127.0.0.1", "::1"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser: its caller, its CSRF token, and the token to store in a fresh
    cookie when this request logged it in (``new_token``)."""

    caller: Caller
    csrf: str
    new_token: str | None = None

    @property
    def sandbox(self) -> str:
        """The sandbox every page shows."""
        return self.caller.sandbox

    def apply(self, request: Request, response: Response) -> Response:
        """Set the cookies this request decided on (after an automatic local login)."""
        if self.new_token is not None:
            set_login_cookies(request, response, self.new_token, self.csrf)
        return response


def cairn_of(request: Request) -> App:
    """The application behind the server."""
    app: App = request.app.state.cairn
    return app


def current_session(request: Request) -> Session:
    """The browser's session, or an automatic local login, else ``Unauthorized``."""
    app = cairn_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            principal = authenticate_session(app, token)
        except Unauthorized:
            principal = None
        if principal is not None:
            csrf = request.cookies.get(CSRF_COOKIE)
            if csrf:
                return Session(Caller(app, principal), csrf)
            return Session(Caller(app, principal), new_csrf(), new_token=token)
    if autologin_allowed(request):
        local = open_local_session(app)
        return Session(Caller(app, authenticate_session(app, local)), new_csrf(), new_token=local)
    raise Unauthorized("log in with an API key")


def new_csrf() -> str:
    """A fresh double-submit token."""
    return secrets.token_urlsafe(24)


def set_login_cookies(request: Request, response: Response, token: str, csrf: str) -> None:
    """Store the session token (HttpOnly) and the CSRF token (readable by the page's own
    script). ``token`` is a session's, never an API key."""
    assert token.startswith("ses_"), "a browser cookie never carries an API key"
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_TTL_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=SESSION_TTL_S, path="/", samesite="strict", secure=secure
    )
    if AUTOLOGIN_OFF_COOKIE in request.cookies:
        response.delete_cookie(AUTOLOGIN_OFF_COOKIE, path="/", httponly=True, samesite="strict")


def clear_login_cookies(response: Response) -> None:
    """Forget the session, and keep the automatic local login off for this browser."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict")
    response.set_cookie(AUTOLOGIN_OFF_COOKIE, "off", path="/", httponly=True, samesite="strict")


def log_out(request: Request) -> None:
    """End the browser's session in the ledger (its cookie is useless from now on)."""
    close_session(cairn_of(request), request.cookies.get(SESSION_COOKIE))


# --- the embedded default's automatic login ------------------------------------------------


def is_local_request(request: Request) -> bool:
    """A request from this machine to a loopback name, not relayed by a proxy."""
    client = request.client.host if request.client else ""
    if client not in LOOPBACK_ADDRESSES:
        return False
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    host = (request.headers.get("host") or "").lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in LOOPBACK_HOSTS


def autologin_enabled(app: App) -> bool:
    """The operator opted into the automatic local login, on an embedded ledger."""
    settings = app.settings
    return settings.dashboard_autologin and settings.database_url.startswith("sqlite")


def autologin_allowed(request: Request) -> bool:
    """Opted in, local, and not switched off by a logout in this browser."""
    return (
        autologin_enabled(cairn_of(request))
        and request.cookies.get(AUTOLOGIN_OFF_COOKIE) != "off"
        and is_local_request(request)
    )


def local_sandboxes(request: Request) -> list[str]:
    """The sandbox a local browser may open without a key (offered on the login page): the
    configured one, when the operator opted in; nothing otherwise."""
    app = cairn_of(request)
    if autologin_enabled(app) and is_local_request(request):
        return [app.settings.sandbox]
    return []


def open_local_session(app: App) -> str:
    """A session (not a key) as owner of the configured sandbox, for the local user."""
    with app.store.connect() as conn:
        require_sandbox(conn, app.settings.sandbox)
    return open_session(app, Principal(app.settings.sandbox, "owner"))


# --- forms ---------------------------------------------------------------------------------


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the dashboard's only form encoding),
    first value of each field."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}


def check_same_origin(request: Request) -> None:
    """Refuse a form posted by another site (login CSRF): browsers send ``Origin`` on every
    POST, and it must name this server."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser: there is no ambient cookie to abuse
        return
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden(f"refused a form posted from {origin!r}")


def check_csrf(session: Session, request: Request, sent: str | None) -> None:
    """A state-changing dashboard request must carry the session's CSRF token."""
    token = sent or request.headers.get("x-cairn-csrf") or ""
    if not secrets.compare_digest(session.csrf.encode(), token.encode()):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page")


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/runs"
    return target
