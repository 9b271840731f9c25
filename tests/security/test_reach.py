"""An attacker holding a key of sandbox B, or an editor key of A, tries every way to the
host and to A's keys (API, dashboard, login, streams), and gets nothing."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest

from cairn.api import operations as ops
from cairn.domain.keys import Principal
from cairn.errors import Forbidden
from cairn.services.access import create_key
from tests.api.conftest import OTHER
from tests.security.conftest import Site, build_app

SOURCES = "/api/v1/sandboxes/{sandbox}/sources"


def _stdio_body(marker: Path, label: str) -> dict[str, object]:
    return {
        "label": label,
        "transport": "stdio",
        "command": "sh",
        "args": ["-c", f"id > {marker}"],
    }


@pytest.mark.parametrize("who", ["editor", "owner", "local_owner", "other_owner"])
def test_no_api_key_can_make_the_server_run_a_program(site: Site, who: str, tmp_path: Path) -> None:
    token = site.local_owner if who == "local_owner" else getattr(site.keys, who)
    sandbox = OTHER if who == "other_owner" else "default"
    marker = tmp_path / "pwned"
    with site.http(token) as http:
        response = http.post(
            SOURCES.format(sandbox=sandbox), json=_stdio_body(marker, f"evil-{who}")
        )
        listed = http.get(SOURCES.format(sandbox=sandbox)).json()
    assert response.status_code == 403, response.text
    assert "CAIRN_STDIO_COMMANDS" in response.json()["detail"]
    assert not marker.exists(), "the command ran on the host"
    assert f"evil-{who}" not in [source["label"] for source in listed]


def test_a_listed_command_is_the_only_one_keys_may_register(tmp_path: Path) -> None:
    app = build_app(tmp_path, f"sqlite:///{tmp_path / 'l.db'}", stdio_commands=(sys.executable,))
    try:
        _, token = create_key(app, "default", "editor", "editor")
        editor = ops.Caller(app, Principal("default", "editor", token.split(".")[0]))
        from cairn import wire

        listed = wire.SourceCreate(
            label="py", transport="stdio", command=sys.executable, args=["-c", "pass"]
        )
        other = wire.SourceCreate(label="sh", transport="stdio", command="sh", args=["-c", "true"])
        health = anyio.run(ops.add_source, editor, listed)
        assert health["source"]["label"] == "py"  # allowed (it is no MCP server: status error)
        with pytest.raises(Forbidden):
            anyio.run(ops.add_source, editor, other)
        operator = ops.Caller(app, Principal("default", "owner"))  # the CLI on this machine
        assert anyio.run(ops.add_source, operator, other)["source"]["label"] == "sh"
    finally:
        app.close()


def test_an_anonymous_loopback_browser_gets_neither_a_key_nor_a_session(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=10.0) as browser:
        page = browser.get("/runs")
        login = browser.get("/login")
        local_a = browser.post("/login", data={"local": "default"})
        local_b = browser.post("/login", data={"local": OTHER})
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    for response in (page, login, local_a, local_b):
        cookies = " ".join(response.headers.get_list("set-cookie"))
        assert "key_" not in cookies and "ses_" not in cookies
        assert site.local_owner not in response.text
    assert 'name="local"' not in login.text
    assert local_a.status_code == 401 and local_b.status_code == 401


def test_a_dashboard_cookie_is_a_session_of_one_sandbox_never_a_key(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=10.0) as browser:
        logged = browser.post("/login", data={"key": site.keys.other_owner})
        assert logged.status_code == 303
        session = browser.cookies["cairn_session"]
        assert session.startswith("ses_") and site.keys.other_owner not in str(logged.headers)
        mine = browser.get(f"/api/v1/sandboxes/{OTHER}/agents")
        theirs = browser.get("/api/v1/sandboxes/default/agents")
        their_keys = browser.get("/api/v1/sandboxes/default/keys")
        listed = browser.get("/api/v1/sandboxes").json()
    assert mine.status_code == 200
    assert theirs.status_code == 404 and their_keys.status_code == 404
    assert [row["sandbox_id"] for row in listed] == [OTHER]
    with site.http(session) as as_bearer:
        assert as_bearer.get(f"/api/v1/sandboxes/{OTHER}/agents").status_code == 401


@pytest.mark.parametrize("who", ["editor", "other_owner", "other_viewer"])
def test_neither_b_nor_an_editor_of_a_can_touch_a_keys(site: Site, who: str) -> None:
    token = getattr(site.keys, who)
    keys = "/api/v1/sandboxes/default/keys"
    with site.http(token) as http:
        answers = [
            http.get(keys),
            http.post(keys, json={"name": "mine", "role": "owner"}),
            http.post(f"{keys}/{site.local_owner.split('.')[0]}/revoke"),
            http.post("/api/v1/sandboxes", json={"sandbox_id": "mine"}),
        ]
        if who != "editor":  # A's editor may follow A's runs; B may not
            answers.append(http.get("/api/v1/sandboxes/default/agents/helper/runs/stream"))
    statuses = [answer.status_code for answer in answers]
    expected = 403 if who == "editor" else 404
    assert statuses[:3] == [expected] * 3, statuses
    assert statuses[3] == 403, "only the instance owner makes sandboxes"
    assert all(status == 404 for status in statuses[4:]), statuses
    for answer in answers:
        assert site.local_owner.split(".")[1] not in answer.text


def test_revoking_a_key_closes_its_open_stream_within_a_second(site: Site) -> None:
    key, token = create_key(site.app, "default", "doomed", "viewer")
    elapsed: list[float] = []

    async def main() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=site.url, headers=headers, timeout=None) as http:
            path = "/api/v1/sandboxes/default/agents/helper/runs/stream"
            async with http.stream("GET", path) as stream:
                assert stream.status_code == 200
                with site.http(site.keys.owner) as owner:
                    revoked = owner.post(f"/api/v1/sandboxes/default/keys/{key.key_id}/revoke")
                    assert revoked.status_code == 200
                started = time.monotonic()
                with anyio.fail_after(10):
                    body = [line async for line in stream.aiter_lines()]
                elapsed.append(time.monotonic() - started)
        assert "event: revoked" in body

    anyio.run(main)
    assert elapsed[0] < 1.0, f"the stream stayed open {elapsed[0]:.2f} s after revocation"


def test_logging_out_or_revoking_the_key_closes_the_dashboard_stream(site: Site) -> None:
    key, token = create_key(site.app, "default", "browser", "viewer")

    async def follow(end: str) -> None:
        async with httpx.AsyncClient(base_url=site.url, timeout=None) as browser:
            await browser.post("/login", data={"key": token})
            async with browser.stream("GET", "/runs/live") as stream:
                assert stream.status_code == 200
                if end == "logout":
                    csrf = browser.cookies["cairn_csrf"]
                    async with httpx.AsyncClient(
                        base_url=site.url, cookies=browser.cookies, timeout=10
                    ) as other_tab:
                        await other_tab.post("/logout", data={"csrf": csrf})
                else:
                    with site.http(site.keys.owner) as owner:
                        owner.post(f"/api/v1/sandboxes/default/keys/{key.key_id}/revoke")
                started = time.monotonic()
                with anyio.fail_after(10):
                    body = [line async for line in stream.aiter_lines()]
                assert time.monotonic() - started < 1.0
                assert "event: revoked" in body

    anyio.run(follow, "logout")
    anyio.run(follow, "revoke")
