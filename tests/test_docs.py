"""Examples in the docs are run, so they cannot rot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cairn.domain.agents import ModelSettings
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.runs import fire_agent

ROOT = Path(__file__).resolve().parent.parent


def json_blocks(path: Path) -> list[object]:
    text = path.read_text(encoding="utf-8")
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


@pytest.mark.anyio
async def test_scripted_docs_example_runs_as_documented(app: App) -> None:
    (script,) = json_blocks(ROOT / "docs" / "scripted.md")
    await create_agent(
        app,
        "default",
        AgentSpec(
            slug="orders",
            system_prompt="You track orders.",
            tool_sources=["builtin"],
            model_settings=ModelSettings(script=script),
        ),
    )
    run = await fire_agent(app, "default", "orders", {"order": {"id": "A-1001"}})
    assert run.status == "succeeded"
    assert run.outcome == "acted"
    assert run.tool_calls[0].name == "json_extract"
    assert run.tool_calls[0].result == "A-1001"
    assert run.output_text == "Order A-1001 is on its way."


def test_every_documented_environment_variable_is_read_by_the_config() -> None:
    config = (ROOT / "src" / "cairn" / "config.py").read_text(encoding="utf-8")
    documented = set(re.findall(r"``(CAIRN_[A-Z_]+)``", config.split('"""')[1]))
    body = config.split('"""', 2)[2]
    read = set(re.findall(r'"(CAIRN_[A-Z_]+)"', body))
    for other in ("store/crypto.py", "pricing.py"):
        source = (ROOT / "src" / "cairn" / other).read_text(encoding="utf-8")
        read |= set(re.findall(r'"(CAIRN_[A-Z_]+)"', source))
    assert documented == read
