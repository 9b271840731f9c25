"""Agents over HTTP, through the SDK: create, list, get, update, archive, the tool catalog,
and who may change them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cairn import errors
from tests.api.conftest import Deployment
from tests.api.helpers import problem_of, quick_settings

BUILTIN_TOOLS = ["clock_now", "http_request", "json_extract", "regex_find"]


def test_an_agent_round_trips_through_create_get_list_update_and_archive(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client(deployment.keys.editor)
    created = client.agents.create(
        slug,
        "You triage bug reports.",
        name="Triage",
        description="Files bugs",
        tool_sources=["builtin"],
        tool_allowlist=["clock_now"],
        model_settings=quick_settings() | {"temperature": 0.2, "max_turns": 3},
    )
    assert created.slug == slug
    assert created.name == "Triage"
    assert created.version == 1
    assert created.status == "active"
    assert created.tool_sources == ["builtin"]
    assert created.tool_allowlist == ["clock_now"]
    assert created.model_settings.temperature == 0.2
    assert created.model_settings.max_turns == 3
    assert created.warnings == []

    assert client.agents.get(slug) == created.model_copy(update={"warnings": []})
    assert slug in [agent.slug for agent in client.agents.list()]

    renamed = client.agents.update(slug, name="Bug triage")
    assert renamed.name == "Bug triage"
    assert renamed.version == 1, "only a new system prompt bumps the version"
    assert renamed.system_prompt == "You triage bug reports."
    assert renamed.tool_allowlist == ["clock_now"]

    reprompted = client.agents.update(slug, system_prompt="You triage and label bug reports.")
    assert reprompted.version == 2
    assert reprompted.name == "Bug triage"

    assert client.agents.archive(slug).status == "archived"
    assert client.agents.get(slug).status == "archived"
    assert client.agents.unarchive(slug).status == "active"


def test_a_stale_allowlist_entry_is_kept_with_a_warning(deployment: Deployment, slug: str) -> None:
    client = deployment.client()
    created = client.agents.create(
        slug, "You help.", tool_allowlist=["clock_nwo"], model_settings=quick_settings()
    )
    assert created.tool_allowlist == ["clock_nwo"]
    assert any("clock_nwo" in warning for warning in created.warnings)


def test_the_tool_catalog_shows_what_the_agent_would_see_without_running_it(
    deployment: Deployment, slug: str
) -> None:
    client = deployment.client(deployment.keys.viewer)
    deployment.client().agents.create(
        slug,
        "You help.",
        tool_allowlist=["clock_now", "nope_tool"],
        model_settings=quick_settings(),
    )
    catalog = client.agents.tools(slug)
    assert catalog.agent == slug
    assert [tool.name for tool in catalog.tools] == ["clock_now"]
    assert catalog.trace.tool_names_advertised == ["clock_now"]
    assert sorted(catalog.trace.allowlist_filtered_out) == sorted(
        name for name in BUILTIN_TOOLS if name != "clock_now"
    )
    assert [entry.entry for entry in catalog.trace.allowlist_missing_entries] == ["nope_tool"]
    assert client.agents.runs.list(slug).runs == [], "looking at the catalog fires nothing"


@pytest.mark.anyio
async def test_the_async_client_manages_agents_too(deployment: Deployment, slug: str) -> None:
    async with deployment.async_client(deployment.keys.editor) as client:
        created = await client.agents.create(slug, "You help.", model_settings=quick_settings())
        assert created.slug == slug
        assert (await client.agents.get(slug)).agent_id == created.agent_id
        assert slug in [agent.slug for agent in await client.agents.list()]
        updated = await client.agents.update(slug, description="async")
        assert updated.description == "async"
        assert (await client.agents.archive(slug)).status == "archived"
        with pytest.raises(errors.NotFound):
            await client.agents.get(f"{slug}-missing")


def test_a_taken_slug_is_a_409_problem(deployment: Deployment, slug: str) -> None:
    client = deployment.client()
    client.agents.create(slug, "You help.", model_settings=quick_settings())
    with pytest.raises(errors.AlreadyExists, match=slug):
        client.agents.create(slug, "Again.")
    response = deployment.http.post(
        "/api/v1/sandboxes/default/agents",
        json={"slug": slug, "system_prompt": "Again."},
        headers={"Authorization": f"Bearer {deployment.keys.owner}"},
    )
    assert response.status_code == 409
    assert slug in problem_of(response)["detail"]


@pytest.mark.parametrize(
    ("body", "error", "quoted"),
    [
        ({"slug": "Not A Slug", "system_prompt": "x"}, "InvalidSlug", "Not A Slug"),
        (
            {"slug": "fine", "system_prompt": "x", "model_settings": {"max_turns": 0}},
            "InvalidModelSettings",
            "max_turns",
        ),
        (
            {"slug": "fine", "system_prompt": "x", "model_settings": {"colour": "red"}},
            "InvalidModelSettings",
            "colour",
        ),
        (
            {"slug": "fine", "system_prompt": "x", "model_settings": {"backend": "nope"}},
            "UnknownBackend",
            "nope",
        ),
    ],
)
def test_an_unusable_agent_is_a_400_problem_that_names_the_value(
    deployment: Deployment, body: dict[str, object], error: str, quoted: str
) -> None:
    response = deployment.http.post(
        "/api/v1/sandboxes/default/agents",
        json=body,
        headers={"Authorization": f"Bearer {deployment.keys.owner}"},
    )
    assert response.status_code == 400, response.text
    problem = problem_of(response)
    assert problem["error"] == error
    assert quoted in problem["detail"]


def test_a_viewer_gets_403_for_every_change_and_nothing_changes(
    deployment: Deployment, slug: str
) -> None:
    deployment.client().agents.create(slug, "You help.", model_settings=quick_settings())
    before = deployment.client().agents.get(slug)
    viewer = deployment.client(deployment.keys.viewer)
    attempts: dict[str, Callable[[], object]] = {
        "create": lambda: viewer.agents.create(f"{slug}-2", "x"),
        "update": lambda: viewer.agents.update(slug, system_prompt="hijacked"),
        "archive": lambda: viewer.agents.archive(slug),
        "unarchive": lambda: viewer.agents.unarchive(slug),
        "fire": lambda: viewer.agents.fire(slug),
        "oneshot": lambda: viewer.runs.oneshot(slug, "hello"),
        "add source": lambda: viewer.sources.add("x", transport="stdio", command="true"),
        "revoke source": lambda: viewer.sources.revoke("builtin"),
        "list keys": lambda: viewer.keys.list(),
        "create key": lambda: viewer.keys.create("mine", "owner"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(errors.Forbidden):
            attempt()
            pytest.fail(f"a viewer could {what}")
    assert deployment.client().agents.get(slug) == before
    assert [agent.slug for agent in deployment.client().agents.list()].count(f"{slug}-2") == 0

    raw = deployment.http.patch(
        f"/api/v1/sandboxes/default/agents/{slug}",
        json={"system_prompt": "hijacked"},
        headers={"Authorization": f"Bearer {deployment.keys.viewer}"},
    )
    assert raw.status_code == 403
    assert "viewer" in problem_of(raw)["detail"]


def test_an_editor_changes_agents_but_does_not_manage_keys(
    deployment: Deployment, slug: str
) -> None:
    editor = deployment.client(deployment.keys.editor)
    editor.agents.create(slug, "You help.", model_settings=quick_settings())
    assert editor.agents.update(slug, description="edited").description == "edited"
    with pytest.raises(errors.Forbidden):
        editor.keys.create("escalate", "owner")
    with pytest.raises(errors.Forbidden):
        editor.keys.list()


def test_an_unknown_agent_is_a_404_problem(deployment: Deployment) -> None:
    client = deployment.client(deployment.keys.viewer)
    with pytest.raises(errors.NotFound, match="no-such-agent"):
        client.agents.get("no-such-agent")
    for method, path in [
        ("GET", "/agents/no-such-agent"),
        ("GET", "/agents/no-such-agent/tools"),
        ("GET", "/agents/no-such-agent/runs"),
        ("POST", "/agents/no-such-agent/test"),
    ]:
        response = deployment.http.request(
            method,
            f"/api/v1/sandboxes/default{path}",
            headers={"Authorization": f"Bearer {deployment.keys.owner}"},
            json={} if method == "POST" else None,
        )
        assert response.status_code == 404, (method, path, response.text)
        assert problem_of(response)["error"] == "NotFound"
