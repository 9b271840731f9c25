"""The dashboard's login and cookies over a real socket, without a browser: the cookie is
HttpOnly and SameSite=Strict, the API takes it on GET but on POST only with the CSRF
header, forms from another origin are refused, and the automatic local login is only for
a browser on this machine talking to a loopback name directly."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.web.conftest import OTHER, Dashboard


def _client(dashboard: Dashboard) -> httpx.Client:
    return httpx.Client(base_url=dashboard.url, timeout=10.0)


@pytest.fixture
def logged_in(dashboard: Dashboard) -> Iterator[httpx.Client]:
    """A client that logged in with the owner key through the form."""
    with _client(dashboard) as client:
        response = client.post(
            "/login",
            data={"key": dashboard.owner, "next": "/agents"},
            headers={"Origin": dashboard.url},
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/agents"
        yield client


def test_logging_in_sets_an_httponly_strict_session_cookie_never_the_key(
    dashboard: Dashboard,
) -> None:
    with _client(dashboard) as client:
        response = client.post(
            "/login", data={"key": dashboard.viewer}, headers={"Origin": dashboard.url}
        )
    assert response.status_code == 303
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("cairn_session="))
    assert session.startswith("cairn_session=ses_")
    assert dashboard.viewer not in response.headers.get("set-cookie", "")
    assert dashboard.viewer.split(".")[1] not in str(response.headers)
    assert "HttpOnly" in session
    assert "SameSite=strict" in session
    csrf = next(c for c in cookies if c.startswith("cairn_csrf="))
    assert "HttpOnly" not in csrf, "the page's own script echoes it"


def test_a_wrong_key_is_refused_on_the_login_page(dashboard: Dashboard) -> None:
    with _client(dashboard) as client:
        response = client.post("/login", data={"key": "key_nope.wrong"})
    assert response.status_code == 401
    assert "unknown or revoked API key" in response.text
    assert "cairn_session=" not in response.headers.get("set-cookie", "")


def test_a_login_form_posted_from_another_site_is_refused(dashboard: Dashboard) -> None:
    with _client(dashboard) as client:
        response = client.post(
            "/login", data={"key": dashboard.owner}, headers={"Origin": "https://evil.example"}
        )
    assert response.status_code == 403
    assert "cairn_session=" not in response.headers.get("set-cookie", "")


def test_the_api_takes_the_cookie_on_get(logged_in: httpx.Client) -> None:
    response = logged_in.get("/api/v1/sandboxes/default/agents")
    assert response.status_code == 200
    assert {agent["slug"] for agent in response.json()} >= {"support", "triage"}


def test_a_cookie_post_without_the_csrf_header_is_refused(
    logged_in: httpx.Client, dashboard: Dashboard
) -> None:
    run_id = dashboard.runs["support"].run_id
    refused = logged_in.post(f"/api/v1/sandboxes/default/runs/{run_id}/cancel")
    assert refused.status_code == 403
    assert "X-Cairn-CSRF" in refused.json()["detail"]
    wrong = logged_in.post(
        f"/api/v1/sandboxes/default/runs/{run_id}/cancel", headers={"X-Cairn-CSRF": "guess"}
    )
    assert wrong.status_code == 403
    token = logged_in.cookies["cairn_csrf"]
    allowed = logged_in.post(
        f"/api/v1/sandboxes/default/runs/{run_id}/cancel", headers={"X-Cairn-CSRF": token}
    )
    assert allowed.status_code == 409, "authenticated: the run is simply finished already"


def test_a_test_fire_form_needs_the_csrf_field(
    logged_in: httpx.Client, dashboard: Dashboard
) -> None:
    refused = logged_in.post("/agents/support/test-fire", data={"event_payload": "{}"})
    assert refused.status_code == 403
    fired = logged_in.post(
        "/agents/support/test-fire",
        data={"event_payload": '{"order_id": "A-7"}', "csrf": logged_in.cookies["cairn_csrf"]},
    )
    assert fired.status_code == 303
    assert fired.headers["location"].startswith("/runs/run_")


def test_logging_out_forgets_the_key_and_keeps_the_local_login_off(
    logged_in: httpx.Client,
) -> None:
    response = logged_in.post("/logout", data={"csrf": logged_in.cookies["cairn_csrf"]})
    assert response.status_code == 303
    assert "cairn_session" not in logged_in.cookies
    again = logged_in.get("/runs")
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=%2Fruns"


def test_an_opted_in_loopback_browser_gets_a_session_never_the_local_key(
    dashboard: Dashboard,
) -> None:
    with _client(dashboard) as client:
        response = client.get("/runs")
    assert response.status_code == 200
    assert "cairn_session=ses_" in response.headers["set-cookie"]
    assert "Sandbox <strong>default</strong>" in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "203.0.113.9"},
        {"Forwarded": "for=203.0.113.9"},
        {"Host": "cairn.attacker.example"},
    ],
    ids=["behind-a-proxy", "forwarded", "rebound-host-name"],
)
def test_the_local_login_is_refused_through_a_proxy_or_a_foreign_host_name(
    dashboard: Dashboard, headers: dict[str, str]
) -> None:
    with _client(dashboard) as client:
        response = client.get("/runs", headers=headers)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_pages_refuse_to_be_framed_and_run_no_inline_script(logged_in: httpx.Client) -> None:
    response = logged_in.get("/runs")
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy
    assert "<script>" not in response.text


def test_the_login_page_only_redirects_to_paths_of_this_server(dashboard: Dashboard) -> None:
    with _client(dashboard) as client:
        response = client.post(
            "/login",
            data={"key": dashboard.owner, "next": "//evil.example/x"},
            headers={"Origin": dashboard.url},
        )
    assert response.headers["location"] == "/runs"


def test_static_files_are_served_by_cairn_itself(dashboard: Dashboard) -> None:
    with _client(dashboard) as client:
        script = client.get("/static/cairn.js")
        style = client.get("/static/cairn.css")
        missing = client.get("/static/nope.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in script.text
    assert style.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404


def test_the_login_page_offers_opted_in_local_browsers_the_configured_sandbox(
    dashboard: Dashboard,
) -> None:
    with _client(dashboard) as client:
        page = client.get("/login")
        assert 'name="local" value="default"' in page.text
        chosen = client.post(
            "/login", data={"local": "default", "next": "/usage"}, headers={"Origin": dashboard.url}
        )
        unknown = client.post("/login", data={"local": OTHER}, headers={"Origin": dashboard.url})
        remote = client.post("/login", data={"local": "default"}, headers={"X-Real-IP": "1.2.3.4"})
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/usage"
    assert "cairn_session=ses_" in chosen.headers["set-cookie"]
    assert unknown.status_code == 401, "no local key was kept for that sandbox"
    assert remote.status_code == 401
