"""Integration sources end to end: connections, the local provider over MCP, and runs that
use (or skip) an app's ``pd_<app>_<tool>`` tools."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cairn.domain.agents import ModelSettings
from cairn.domain.connections import Connection
from cairn.domain.runs import Run
from cairn.domain.trace import SourceSkipped
from cairn.errors import NotFound, UsageError
from cairn.ids import new_id
from cairn.services.agents import AgentSpec, agent_catalog, create_agent
from cairn.services.app import App
from cairn.services.connections import (
    add_connection,
    add_integration_source,
    list_connections,
    revoke_connection,
)
from cairn.services.runs import fire_agent, get_run_events
from cairn.store import connections as connection_store
from cairn.store.schema import connections, sources
from cairn.tools.integration import IntegrationSource
from cairn.tools.kinds import source_kinds
from tests.fakes.provider_server import FakeProvider

SANDBOX = "default"
POST_SCRIPT: dict[str, Any] = {
    "turns": [
        {
            "text": "Posting. ",
            "tool_calls": [
                {
                    "name": "pd_slack_post_message",
                    "arguments": {"channel": "#support", "text": "{{event.title}}"},
                }
            ],
        },
        {"text": "Posted: {{results.-1}}"},
    ]
}
CLOCK_SCRIPT: dict[str, Any] = {
    "turns": [
        {"tool_calls": [{"name": "clock_now", "arguments": {}}]},
        {"text": "It is {{results.-1}}."},
    ]
}


async def make_agent(app: App, script: dict[str, Any], slug: str = "notifier") -> None:
    """A scripted agent on the sandbox's default sources (builtin, MCP, integrations)."""
    await create_agent(
        app,
        SANDBOX,
        AgentSpec(
            slug=slug,
            system_prompt="Tell the team.",
            model_settings=ModelSettings(script=script),
        ),
    )


def add_slack(app: App, provider: FakeProvider) -> None:
    add_integration_source(app, SANDBOX, "slack", provider_url=provider.url)


def only_skip(run: Run) -> SourceSkipped:
    assert run.tool_resolution_trace is not None
    (skip,) = run.tool_resolution_trace.sources_skipped
    return skip


def store_connection(app: App, token: str, expires_at: datetime | None) -> None:
    """A connection written as it would be, but with an expiry already in the past."""
    connection = Connection(
        new_id("conn"), SANDBOX, "slack", expires_at=expires_at, token={"access_token": token}
    )
    with app.store.begin() as conn:
        connection_store.create_connection(conn, connection, app.secrets)


def test_the_integration_kind_is_built_by_integration_source() -> None:
    assert source_kinds.get("integration") is IntegrationSource


@pytest.mark.anyio
async def test_a_connected_app_gives_pd_tools_and_a_run_calls_them(
    app: App, provider: FakeProvider
) -> None:
    token = provider.issue("slack")
    add_connection(app, SANDBOX, "slack", token, expires_in_s=3600, account_label="ops")
    add_slack(app, provider)
    await make_agent(app, POST_SCRIPT)

    run = await fire_agent(app, SANDBOX, "notifier", {"title": "checkout is broken"})

    assert run.status == "succeeded", run.error_message
    assert run.outcome == "acted"
    (call,) = run.tool_calls
    assert call.name == "pd_slack_post_message"
    assert call.error is None
    assert call.result == {"ok": True, "channel": "#support", "ts": "1700000000.000100"}
    assert ("slack", "post_message", {"channel": "#support", "text": "checkout is broken"}) in (
        provider.calls
    )
    trace = run.tool_resolution_trace
    assert trace is not None and trace.sources_skipped == []
    resolved = {s.kind: s for s in trace.sources_resolved}
    assert resolved["integration"].label == "slack"
    assert resolved["integration"].tool_count == 2
    assert {"pd_slack_list_channels", "pd_slack_post_message"} <= set(trace.tool_names_advertised)
    assert f"Bearer {token}" in provider.authorizations


@pytest.mark.anyio
async def test_the_catalog_shows_an_apps_tools_under_pd_names(
    app: App, provider: FakeProvider
) -> None:
    add_connection(app, SANDBOX, "github", provider.issue("github"))
    add_integration_source(app, SANDBOX, "github", label="gh", provider_url=provider.url)
    await make_agent(app, CLOCK_SCRIPT)

    catalog = await agent_catalog(app, SANDBOX, "notifier")

    names = [tool["name"] for tool in catalog.tools]
    assert "pd_github_create_issue" in names
    assert "clock_now" in names


@pytest.mark.anyio
async def test_an_integration_without_a_connection_is_skipped_and_the_run_uses_its_other_tools(
    app: App, provider: FakeProvider
) -> None:
    add_slack(app, provider)
    await make_agent(app, CLOCK_SCRIPT)
    seen_before = len(provider.authorizations)

    run = await fire_agent(app, SANDBOX, "notifier", {"title": "anything"})

    assert run.status == "succeeded", run.error_message
    assert run.outcome == "acted"
    assert [call.name for call in run.tool_calls] == ["clock_now"]
    skip = only_skip(run)
    assert (skip.kind, skip.label, skip.reason) == ("integration", "slack", "oauth_missing")
    assert skip.message.startswith("slack: no OAuth connection")
    assert "cairn connection add slack" in skip.message
    assert run.tool_resolution_trace is not None
    advertised = run.tool_resolution_trace.tool_names_advertised
    assert "clock_now" in advertised
    assert not [name for name in advertised if name.startswith("pd_")]
    assert len(provider.authorizations) == seen_before  # the provider was never asked


@pytest.mark.anyio
async def test_an_expired_token_is_skipped_as_oauth_expired(
    app: App, provider: FakeProvider
) -> None:
    token = provider.issue("slack")
    store_connection(app, token, datetime.now(UTC) - timedelta(minutes=5))
    add_slack(app, provider)
    await make_agent(app, CLOCK_SCRIPT)

    run = await fire_agent(app, SANDBOX, "notifier", {})

    assert run.status == "succeeded"
    skip = only_skip(run)
    assert skip.reason == "oauth_expired"
    assert skip.message.startswith("slack: the OAuth token expired at ")
    assert "cairn connection add slack" in skip.message


@pytest.mark.anyio
async def test_a_revoked_connection_is_skipped_as_missing_and_says_it_was_revoked(
    app: App, provider: FakeProvider
) -> None:
    add_connection(app, SANDBOX, "slack", provider.issue("slack"))
    add_slack(app, provider)
    revoked = revoke_connection(app, SANDBOX, "slack")
    await make_agent(app, CLOCK_SCRIPT)

    run = await fire_agent(app, SANDBOX, "notifier", {})

    assert revoked.status == "revoked"
    assert run.status == "succeeded"
    assert run.outcome == "acted"
    skip = only_skip(run)
    assert skip.reason == "oauth_missing"
    assert "slack: the OAuth connection was revoked" in skip.message


@pytest.mark.anyio
async def test_a_token_the_provider_refuses_is_skipped_as_oauth_expired(
    app: App, provider: FakeProvider
) -> None:
    token = provider.issue("slack")
    add_connection(app, SANDBOX, "slack", token, expires_in_s=3600)
    add_slack(app, provider)
    provider.revoke(token)  # revoked at the app, unknown to Cairn
    await make_agent(app, CLOCK_SCRIPT)

    run = await fire_agent(app, SANDBOX, "notifier", {})

    assert run.status == "succeeded"
    skip = only_skip(run)
    assert skip.reason == "oauth_expired"
    assert "the provider refused the OAuth token" in skip.message
    assert token not in skip.message


@pytest.mark.anyio
async def test_a_token_issued_for_another_app_is_refused(app: App, provider: FakeProvider) -> None:
    add_connection(app, SANDBOX, "slack", provider.issue("github"))
    add_slack(app, provider)
    await make_agent(app, CLOCK_SCRIPT)

    run = await fire_agent(app, SANDBOX, "notifier", {})

    assert only_skip(run).reason == "oauth_expired"


@pytest.mark.anyio
async def test_an_unreachable_provider_is_skipped_as_unreachable(
    app: App, provider: FakeProvider
) -> None:
    add_connection(app, SANDBOX, "slack", provider.issue("slack"))
    # Port 9 (discard) on loopback: nothing listens there, the connection is refused.
    add_integration_source(app, SANDBOX, "slack", provider_url="http://127.0.0.1:9/mcp")
    await make_agent(app, CLOCK_SCRIPT)

    run = await fire_agent(app, SANDBOX, "notifier", {})

    assert run.status == "succeeded"
    assert only_skip(run).reason == "unreachable"


@pytest.mark.anyio
async def test_adding_a_connection_again_replaces_the_old_one(
    app: App, provider: FakeProvider
) -> None:
    old = add_connection(app, SANDBOX, "slack", provider.issue("slack"))
    fresh_token = provider.issue("slack")
    fresh = add_connection(app, SANDBOX, "slack", fresh_token)
    add_slack(app, provider)
    await make_agent(app, POST_SCRIPT)

    run = await fire_agent(app, SANDBOX, "notifier", {"title": "hello"})

    statuses = {c.connection_id: c.status for c in list_connections(app, SANDBOX)}
    assert statuses == {old.connection_id: "revoked", fresh.connection_id: "active"}
    assert run.outcome == "acted"
    assert provider.authorizations[-1] == f"Bearer {fresh_token}"


@pytest.mark.anyio
async def test_tokens_are_encrypted_at_rest_and_never_in_runs_traces_or_events(
    app: App, provider: FakeProvider
) -> None:
    token = provider.issue("slack")
    made = add_connection(app, SANDBOX, "slack", token, expires_in_s=60)
    add_slack(app, provider)
    await make_agent(app, POST_SCRIPT)
    run = await fire_agent(app, SANDBOX, "notifier", {"title": "hi"})
    provider.revoke(token)
    refused = await fire_agent(app, SANDBOX, "notifier", {"title": "again"})

    with app.store.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(connections))]
        source_rows = [dict(row._mapping) for row in conn.execute(select(sources))]
    (row,) = rows
    assert token not in json.dumps(rows + source_rows, default=str)
    assert app.secrets.open(row["token_ciphertext"]) == {"access_token": token}
    shown = [
        made.to_dict(),
        [c.to_dict() for c in list_connections(app, SANDBOX)],
        run.to_dict(),
        refused.to_dict(),
        [e.to_dict() for e in get_run_events(app, SANDBOX, run.run_id)],
        [e.to_dict() for e in get_run_events(app, SANDBOX, refused.run_id)],
    ]
    assert token not in json.dumps(shown, default=str)
    assert "access_token" not in json.dumps(shown[:2])


def test_revoking_forgets_the_token(app: App, provider: FakeProvider) -> None:
    made = add_connection(app, SANDBOX, "slack", provider.issue("slack"))

    revoke_connection(app, SANDBOX, made.connection_id)

    with app.store.connect() as conn:
        (row,) = conn.execute(select(connections)).all()
    assert (row.status, row.token_ciphertext) == ("revoked", None)
    assert revoke_connection(app, SANDBOX, made.connection_id).status == "revoked"
    with pytest.raises(NotFound, match="no active connection 'slack'"):
        revoke_connection(app, SANDBOX, "slack")


def test_connections_are_private_to_their_sandbox(app: App, provider: FakeProvider) -> None:
    from cairn.services.access import create_sandbox

    create_sandbox(app, "other")
    made = add_connection(app, "other", "slack", provider.issue("slack"))

    assert list_connections(app, SANDBOX) == []
    with pytest.raises(NotFound):
        revoke_connection(app, SANDBOX, made.connection_id)


def test_an_integration_source_is_named_by_its_app(app: App, provider: FakeProvider) -> None:
    source = add_integration_source(app, SANDBOX, "slack", provider_url=provider.url + "/")

    assert (source.kind, source.label, source.status) == ("integration", "slack", "active")
    assert source.config == {
        "app_slug": "slack",
        "provider_url": provider.url,
        "namespace": "pd_slack",
    }


def test_the_provider_url_defaults_to_the_configured_one(app: App) -> None:
    configured = App(replace(app.settings, connect_url="http://127.0.0.1:8123/mcp"), app.store)

    source = add_integration_source(configured, SANDBOX, "linear")

    assert source.config["provider_url"] == "http://127.0.0.1:8123/mcp"


@pytest.mark.parametrize(
    ("app_slug", "provider_url", "message"),
    [
        ("slack", None, "CAIRN_CONNECT_URL"),
        ("slack", "ftp://example.test", "http"),
        ("Slack!", "http://127.0.0.1:1/mcp", "app slug 'Slack!'"),
        ("slack", "http://[::1/mcp", "http"),
    ],
)
def test_an_unusable_integration_source_is_refused_with_the_remedy(
    app: App, app_slug: str, provider_url: str | None, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        add_integration_source(app, SANDBOX, app_slug, provider_url=provider_url)


@pytest.mark.parametrize(
    ("token", "expires_in_s", "message"),
    [
        ("", None, "needs an access token"),
        ("tok", 0, "between 1 and"),
        ("tok", 10**18, "between 1 and"),
    ],
)
def test_an_unusable_connection_is_refused(
    app: App, token: str, expires_in_s: int | None, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        add_connection(app, SANDBOX, "slack", token, expires_in_s=expires_in_s)
