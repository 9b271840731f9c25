"""Fixtures of the MCP server tests: a real ``cairn serve`` app (uvicorn in a thread, as the
API tests run it, on SQLite and on PostgreSQL) holding an agent with a run and a trigger,
and MCP sessions over it opened with the official ``mcp`` client: streamable HTTP at
``/mcp`` with a bearer key, or stdio to a ``cairn mcp`` subprocess."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import mcp_types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.api.conftest import Deployment, deployment, module_ledger  # noqa: F401 (fixtures)
from tests.api.helpers import quick_settings

SANDBOX_PATH = "/api/v1/sandboxes/default"


@dataclass(frozen=True)
class Scene:
    """The served Cairn and what ``default`` holds: an agent, one finished run of it and a
    trigger binding it to a webhook source."""

    deployment: Deployment
    slug: str
    run_id: str
    trigger_id: str

    @property
    def url(self) -> str:
        """The MCP endpoint."""
        return self.deployment.url + "/mcp"


@pytest.fixture(scope="module")
def scene(deployment: Deployment) -> Scene:  # noqa: F811 (the imported fixture)
    """The module's agent, run and trigger, made over the API with the owner key."""
    slug = f"mcp-{uuid.uuid4().hex[:8]}"
    client = deployment.client()
    client.agents.create(
        slug,
        "You help.",
        description="Answers bug reports.",
        model_settings=quick_settings("Seen {{event.title}}"),
    )
    run = client.agents.test(slug, {"title": "broken checkout"})
    hook = client.sources.add_webhook(f"hook-{slug}")
    made = deployment.http.post(
        f"{SANDBOX_PATH}/agents/{slug}/triggers",
        json={"data_source_id": hook.source.source_id},
        headers={"Authorization": f"Bearer {deployment.keys.owner}"},
    )
    assert made.status_code == 201, made.text
    return Scene(deployment, slug, run.run_id, made.json()["trigger_id"])


@asynccontextmanager
async def over_http(url: str, token: str) -> AsyncIterator[Client]:
    """An MCP session with the server at ``url`` (streamable HTTP), as ``token``."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def cairn_command(*args: str) -> list[str]:
    """``cairn <args>`` as this interpreter runs it."""
    return [sys.executable, "-m", "cairn.cli.main", *args]


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a ``cairn`` subprocess: its own CAIRN_HOME, nothing else of
    Cairn's from the test's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    return {**env, "CAIRN_HOME": str(home), **extra}


@asynccontextmanager
async def over_stdio(home: Path, *args: str, **env: str) -> AsyncIterator[Client]:
    """An MCP session with ``cairn <args>`` started as a subprocess (stdio)."""
    command = cairn_command(*args)
    params = StdioServerParameters(command=command[0], args=command[1:], env=cli_env(home, **env))
    async with Client(params, read_timeout_seconds=120) as client:
        yield client


def text_of(result: mcp_types.CallToolResult) -> str:
    """The one text block of a tool's answer."""
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, mcp_types.TextContent)
    return block.text


def json_of(result: mcp_types.CallToolResult) -> Any:
    """A successful tool's answer, decoded (its text is the JSON the operation returned)."""
    assert not result.is_error, text_of(result)
    return json.loads(text_of(result))


def refusal_of(result: mcp_types.CallToolResult) -> str:
    """A tool error's reason: one line."""
    assert result.is_error
    reason = text_of(result)
    assert "\n" not in reason and reason.strip() == reason
    return reason
