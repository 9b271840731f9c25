"""Wrappers change what a source shows (prefix, per-source allowlist, a call cap) without
touching the source: each test wraps a small real source that records what reaches it."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import pytest

from cairn.domain.tools import ToolSpec
from cairn.ids import new_id
from cairn.tools.base import ToolOutput, ToolSource
from cairn.tools.wrappers import (
    PrefixedSource,
    RateCappedSource,
    SourceFilteredSource,
    hidden_by_source,
    wrap_for_config,
)


class EchoSource:
    """Offers ``search`` and ``delete_all``; answers every call with what it received."""

    kind = "test_echo"

    def __init__(self, source_id: str = "src_echo", label: str = "echo") -> None:
        self.source_id = source_id
        self.label = label
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.entered = 0
        self.exited = 0

    async def __aenter__(self) -> EchoSource:
        self.entered += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.exited += 1

    async def list_tools(self) -> list[ToolSpec]:
        return [
            ToolSpec("search", "Search things.", {"type": "object", "required": ["q"]}),
            ToolSpec("delete_all", "Delete everything."),
        ]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        self.received.append((name, arguments))
        return ToolOutput(result={"tool": name, "arguments": arguments})


def names(specs: list[ToolSpec]) -> list[str]:
    return [spec.name for spec in specs]


@pytest.mark.anyio
async def test_prefixed_source_shows_namespaced_names_with_their_schemas() -> None:
    inner = EchoSource()
    specs = await PrefixedSource(inner, "crm").list_tools()
    assert names(specs) == ["crm_search", "crm_delete_all"]
    assert specs[0].input_schema == {"type": "object", "required": ["q"]}
    assert specs[0].description == "Search things."


@pytest.mark.anyio
async def test_prefixed_source_calls_the_inner_tool_by_its_raw_name() -> None:
    inner = EchoSource()
    output = await PrefixedSource(inner, "crm").call_tool("crm_search", {"q": "lamp"})
    assert inner.received == [("search", {"q": "lamp"})]
    assert output.result == {"tool": "search", "arguments": {"q": "lamp"}}


@pytest.mark.anyio
async def test_wrappers_keep_identity_and_delegate_the_lifecycle() -> None:
    inner = EchoSource("src_abc", "my crm")
    wrapped = PrefixedSource(inner, "crm")
    assert (wrapped.source_id, wrapped.kind, wrapped.label) == ("src_abc", "test_echo", "my crm")
    async with wrapped as entered:
        assert entered is wrapped
        assert inner.entered == 1
    assert inner.exited == 1


@pytest.mark.anyio
async def test_source_filter_hides_unlisted_tools_and_reports_them() -> None:
    filtered = SourceFilteredSource(EchoSource(), ["search"])
    assert names(await filtered.list_tools()) == ["search"]
    assert filtered.hidden == ["delete_all"]
    assert hidden_by_source(filtered) == ["delete_all"]


@pytest.mark.anyio
async def test_source_filter_refuses_a_hidden_tool_without_reaching_the_source() -> None:
    inner = EchoSource(label="crm")
    filtered = SourceFilteredSource(inner, ["search"])
    output = await filtered.call_tool("delete_all", {})
    assert output.error is not None
    assert "'delete_all'" in output.error and "'crm'" in output.error
    assert inner.received == []


@pytest.mark.anyio
async def test_rate_cap_errors_over_the_cap_without_calling_the_source() -> None:
    inner = EchoSource(new_id("src"), "busy")
    capped = RateCappedSource(inner, 2)
    outputs = [await capped.call_tool("search", {"q": str(n)}) for n in range(3)]
    assert [o.error for o in outputs[:2]] == [None, None]
    assert outputs[2].error is not None
    assert "2 calls per minute" in outputs[2].error and "'busy'" in outputs[2].error
    assert [args["q"] for _, args in inner.received] == ["0", "1"]


@pytest.mark.anyio
async def test_rate_cap_holds_across_wrappers_of_the_same_source_id() -> None:
    source_id = new_id("src")
    first = RateCappedSource(EchoSource(source_id), 1)
    assert (await first.call_tool("search", {})).error is None
    second_inner = EchoSource(source_id)
    second = RateCappedSource(second_inner, 1)
    assert (await second.call_tool("search", {})).error is not None
    assert second_inner.received == []
    other = RateCappedSource(EchoSource(new_id("src")), 1)
    assert (await other.call_tool("search", {})).error is None


@pytest.mark.anyio
async def test_config_wrappers_filter_raw_names_then_prefix() -> None:
    inner = EchoSource(new_id("src"))
    source = wrap_for_config(
        inner, {"allowed_tools": ["search"], "calls_per_minute": 10, "namespace": "crm"}
    )
    assert names(await source.list_tools()) == ["crm_search"]
    assert hidden_by_source(source) == ["delete_all"]
    assert (await source.call_tool("crm_search", {"q": "x"})).error is None
    assert inner.received == [("search", {"q": "x"})]


def test_a_config_without_wrapping_options_returns_the_source_itself() -> None:
    inner = EchoSource()
    source: ToolSource = wrap_for_config(inner, {"namespace": None})
    assert source is inner
    assert hidden_by_source(source) == []
