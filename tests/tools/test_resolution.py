"""Tool resolution and its trace: selection, concurrent building under a timeout, skips with
reasons, the agent's allowlist and the drift it reports.

Misbehaving sources are small real ``ToolSource`` classes registered as a plugin kind
(``test_fake``) through ``source_kinds``; what each does comes from its record's config.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any, ClassVar

import anyio
import pytest

from cairn.domain.sources import DataSource, SourceStatus
from cairn.tools.base import SourceUnavailable, ToolContext, ToolOutput, ToolSpec
from cairn.tools.builtin import builtin_source_record
from cairn.tools.kinds import source_kinds
from cairn.tools.resolution import (
    ResolvedTools,
    allowlist_matches,
    apply_allowlist,
    resolve_tools,
    select_sources,
    suggest_tool_names,
)

BUILTIN_NAMES = ["clock_now", "http_request", "json_extract", "regex_find"]
CONTEXT = ToolContext(resolve_timeout_s=0.25)


class FakeSource:
    """A tool source whose behaviour is its config: ``tools`` (names offered) and
    ``behaviour``: ``ok``, ``hang`` (never lists), ``refuse`` (SourceUnavailable
    auth_refused), ``crash`` (a plain exception while listing), ``rendezvous`` (lists only
    once every rendezvous source has started listing)."""

    kind = "test_fake"
    closed: ClassVar[list[str]] = []
    rendezvous: ClassVar[dict[str, Any]] = {}

    def __init__(self, record: DataSource, context: ToolContext) -> None:
        self.source_id = record.source_id
        self.label = record.label
        self.config = record.config

    async def __aenter__(self) -> FakeSource:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        FakeSource.closed.append(self.source_id)

    async def list_tools(self) -> list[ToolSpec]:
        behaviour = self.config.get("behaviour", "ok")
        if behaviour == "hang":
            await anyio.Event().wait()
        elif behaviour == "refuse":
            raise SourceUnavailable("auth_refused", f"{self.label}: server answered 401")
        elif behaviour == "crash":
            raise RuntimeError("listing exploded")
        elif behaviour == "rendezvous":
            state = FakeSource.rendezvous
            state["arrived"] += 1
            if state["arrived"] == state["expected"]:
                state["all_here"].set()
            await state["all_here"].wait()
        return [ToolSpec(name, f"{name} from {self.label}") for name in self.config["tools"]]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        return ToolOutput(result={"source": self.label, "tool": name, "arguments": arguments})


@pytest.fixture(autouse=True)
def fake_kind() -> Iterator[None]:
    source_kinds.register("test_fake", FakeSource)
    FakeSource.closed.clear()
    yield
    FakeSource.closed.clear()
    # Registry has no public unregister; later tests should see only the installed kinds.
    source_kinds._loaded.pop("test_fake", None)


def fake(
    source_id: str,
    tools: list[str] | None = None,
    *,
    behaviour: str = "ok",
    label: str | None = None,
    status: SourceStatus = "active",
    kind: str = "test_fake",
    **config: Any,
) -> DataSource:
    return DataSource(
        source_id=source_id,
        sandbox_id="default",
        kind=kind,
        label=label or source_id,
        config={"tools": tools or [], "behaviour": behaviour, **config},
        status=status,
    )


BUILTIN = builtin_source_record("default")


async def resolve(
    available: list[DataSource],
    selection: list[str] | None,
    allowlist: list[str] | None = None,
    context: ToolContext = CONTEXT,
) -> ResolvedTools:
    """Resolve, and return what the run would have seen (sources closed afterwards)."""
    with anyio.fail_after(5):
        async with resolve_tools(
            selection=selection,
            allowlist=allowlist or [],
            available=available,
            context=context,
        ) as tools:
            return tools


# --- selection --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_no_selection_resolves_the_builtin_default() -> None:
    tools = await resolve([BUILTIN], None)
    trace = tools.trace
    assert [(s.source_id, s.tool_count) for s in trace.sources_resolved] == [("builtin", 4)]
    assert trace.sources_skipped == []
    assert trace.tool_names_advertised == BUILTIN_NAMES
    assert [spec.name for spec in tools.specs] == BUILTIN_NAMES


def test_the_default_set_is_builtin_and_every_mcp_source_not_revoked() -> None:
    live = fake("src_live", kind="user_mcp")
    revoked = fake("src_gone", kind="user_mcp", status="revoked")
    other = fake("src_other")
    chosen, skipped = select_sources(None, [BUILTIN, live, revoked, other])
    assert [s.source_id for s in chosen] == ["builtin", "src_live"]
    assert skipped == []


@pytest.mark.anyio
async def test_an_empty_selection_resolves_nothing_and_skips_nothing() -> None:
    tools = await resolve([BUILTIN, fake("src_a", ["a"])], [])
    assert tools.trace.sources_resolved == []
    assert tools.trace.sources_skipped == []
    assert tools.trace.tool_names_advertised == []
    assert tools.specs == []


@pytest.mark.anyio
async def test_a_named_source_id_that_does_not_exist_is_skipped_as_not_found() -> None:
    tools = await resolve([BUILTIN], ["builtin", "src_missing"])
    (skip,) = tools.trace.sources_skipped
    assert (skip.source_id, skip.reason) == ("src_missing", "not_found")
    assert "'src_missing'" in skip.message
    assert tools.trace.tool_names_advertised == BUILTIN_NAMES


def test_a_source_can_be_named_by_its_label() -> None:
    orders = fake("src_orders", ["lookup"], label="orders", kind="user_mcp")
    chosen, skipped = select_sources(["orders"], [BUILTIN, orders])
    assert [s.source_id for s in chosen] == ["src_orders"]
    assert skipped == []


@pytest.mark.anyio
async def test_a_revoked_source_named_by_id_is_skipped_as_disabled() -> None:
    revoked = fake("src_old", ["a"], label="old crm", status="revoked")
    tools = await resolve([BUILTIN, revoked], ["src_old"])
    (skip,) = tools.trace.sources_skipped
    assert (skip.source_id, skip.label, skip.reason) == ("src_old", "old crm", "disabled")
    assert "revoked" in skip.message
    assert tools.trace.sources_resolved == []


def test_a_kind_leaves_revoked_sources_out_without_a_skip() -> None:
    live = fake("src_live", ["a"])
    revoked = fake("src_old", ["b"], status="revoked")
    chosen, skipped = select_sources(["test_fake"], [live, revoked])
    assert [s.source_id for s in chosen] == ["src_live"]
    assert skipped == []


def test_a_source_named_by_kind_and_by_id_is_chosen_once() -> None:
    source = fake("src_a", ["a"])
    chosen, _ = select_sources(["test_fake", "src_a"], [source])
    assert chosen == [source]


# --- building: concurrency, timeouts, failures ------------------------------------------


@pytest.mark.anyio
async def test_a_hanging_source_is_skipped_for_timeout_and_the_others_resolve() -> None:
    slow = fake("src_slow", ["never"], label="slow crm", behaviour="hang")
    tools = await resolve(
        [BUILTIN, slow, fake("src_ok", ["ping"])], ["builtin", "src_slow", "src_ok"]
    )
    (skip,) = tools.trace.sources_skipped
    assert (skip.source_id, skip.reason) == ("src_slow", "timeout")
    assert skip.message == "slow crm: did not list its tools within 0.25 s"
    assert [s.source_id for s in tools.trace.sources_resolved] == ["builtin", "src_ok"]
    assert tools.trace.tool_names_advertised == [*BUILTIN_NAMES, "ping"]
    assert "src_slow" in FakeSource.closed


@pytest.mark.anyio
async def test_sources_list_their_tools_concurrently() -> None:
    # Each rendezvous source finishes listing only once all of them have started; built
    # one after another, the first would wait for the others until its timeout.
    FakeSource.rendezvous.update(arrived=0, expected=3, all_here=anyio.Event())
    sources = [fake(f"src_{n}", [f"t{n}"], behaviour="rendezvous") for n in range(3)]
    tools = await resolve(sources, ["test_fake"])
    assert tools.trace.sources_skipped == []
    assert tools.trace.tool_names_advertised == ["t0", "t1", "t2"]


@pytest.mark.anyio
async def test_a_source_unavailable_is_skipped_with_its_own_reason_and_message() -> None:
    refusing = fake("src_auth", ["a"], label="billing", behaviour="refuse")
    tools = await resolve([BUILTIN, refusing], ["builtin", "src_auth"])
    (skip,) = tools.trace.sources_skipped
    assert skip.to_dict() == {
        "source_id": "src_auth",
        "kind": "test_fake",
        "label": "billing",
        "reason": "auth_refused",
        "message": "billing: server answered 401",
    }
    assert tools.trace.tool_names_advertised == BUILTIN_NAMES


@pytest.mark.anyio
async def test_a_source_that_raises_anything_else_is_skipped_with_reason_error() -> None:
    tools = await resolve([fake("src_bug", ["a"], label="buggy", behaviour="crash")], ["src_bug"])
    (skip,) = tools.trace.sources_skipped
    assert skip.reason == "error"
    assert skip.message == "buggy: RuntimeError: listing exploded"


@pytest.mark.anyio
async def test_a_source_of_an_uninstalled_kind_is_skipped_naming_the_known_kinds() -> None:
    orphan = fake("src_orphan", ["a"], kind="integration_not_installed")
    tools = await resolve([BUILTIN, orphan], ["builtin", "src_orphan"])
    (skip,) = tools.trace.sources_skipped
    assert skip.reason == "error"
    assert "integration_not_installed" in skip.message and "builtin" in skip.message


@pytest.mark.anyio
async def test_resolved_sources_are_closed_when_resolution_ends() -> None:
    await resolve([fake("src_a", ["a"]), fake("src_b", ["b"])], ["src_a", "src_b"])
    assert sorted(FakeSource.closed) == ["src_a", "src_b"]


@pytest.mark.anyio
async def test_an_error_in_the_body_propagates_as_itself_after_closing_the_sources() -> None:
    with pytest.raises(LookupError, match="from the run"):
        async with resolve_tools(
            selection=["src_a"], allowlist=[], available=[fake("src_a", ["a"])], context=CONTEXT
        ):
            raise LookupError("from the run")
    assert FakeSource.closed == ["src_a"]


# --- the assembled catalog ------------------------------------------------------------


@pytest.mark.anyio
async def test_advertised_tools_are_called_through_their_own_source() -> None:
    available = [fake("src_a", ["alpha"], label="A"), fake("src_b", ["beta"], label="B")]
    with anyio.fail_after(5):
        async with resolve_tools(
            selection=["test_fake"], allowlist=[], available=available, context=CONTEXT
        ) as tools:
            output = await tools.call("beta", {"x": 1})
    assert output.result == {"source": "B", "tool": "beta", "arguments": {"x": 1}}


@pytest.mark.anyio
async def test_a_name_offered_by_two_sources_goes_to_the_first_and_the_conflict_is_recorded() -> (
    None
):
    first = fake("src_a", ["search", "a_only"], label="docs")
    second = fake("src_b", ["search"], label="wiki")
    with anyio.fail_after(5):
        async with resolve_tools(
            selection=["src_a", "src_b"], allowlist=[], available=[first, second], context=CONTEXT
        ) as tools:
            output = await tools.call("search", {})
    assert tools.trace.name_conflicts == ["search (wiki)"]
    assert tools.trace.tool_names_advertised == ["search", "a_only"]
    assert output.result["source"] == "docs"


@pytest.mark.anyio
async def test_a_namespaced_source_advertises_prefixed_names() -> None:
    crm = fake("src_crm", ["lookup_order", "refund"], namespace="crm")
    tools = await resolve([crm], ["src_crm"])
    assert tools.trace.tool_names_advertised == ["crm_lookup_order", "crm_refund"]


@pytest.mark.anyio
async def test_a_source_allowed_tools_list_is_reported_as_hidden_by_source() -> None:
    crm = fake("src_crm", ["lookup_order", "delete_all"], allowed_tools=["lookup_order"])
    tools = await resolve([crm], ["src_crm"])
    (resolved,) = tools.trace.sources_resolved
    assert resolved.tool_count == 1
    assert resolved.hidden_by_source == ["delete_all"]
    assert tools.trace.tool_names_advertised == ["lookup_order"]


# --- the allowlist and drift ------------------------------------------------------------


@pytest.mark.anyio
async def test_real_tools_not_in_the_allowlist_are_filtered_out_and_not_callable() -> None:
    tools = await resolve([BUILTIN], None, ["clock_now"])
    assert tools.trace.tool_names_advertised == ["clock_now"]
    assert tools.trace.allowlist_filtered_out == ["http_request", "json_extract", "regex_find"]
    assert tools.is_advertised("clock_now")
    assert not tools.is_advertised("http_request")
    assert [s.name for s in tools.specs] == ["clock_now"]
    assert tools.trace.sources_resolved[0].tool_count == 4  # counted before the allowlist


@pytest.mark.anyio
async def test_stale_allowlist_entry_is_reported_as_missing_with_the_namespaced_name() -> None:
    crm = fake("src_crm", ["lookup_order", "refund"], namespace="crm")
    tools = await resolve([crm], ["src_crm"], ["lookup_order", "crm_refund"])
    (missing,) = tools.trace.allowlist_missing_entries
    assert missing.entry == "lookup_order"
    assert missing.suggestions[0] == "crm_lookup_order"
    assert missing.possibly_from_skipped is None
    assert tools.trace.tool_names_advertised == ["crm_refund"]
    assert tools.trace.allowlist_filtered_out == ["crm_lookup_order"]


@pytest.mark.anyio
async def test_a_misspelt_allowlist_entry_suggests_the_close_real_name() -> None:
    tools = await resolve([BUILTIN], None, ["json_extarct", "clock_now"])
    (missing,) = tools.trace.allowlist_missing_entries
    assert missing.entry == "json_extarct"
    assert missing.suggestions == ["json_extract"]


@pytest.mark.anyio
async def test_an_entry_for_a_skipped_sources_namespace_points_at_that_source() -> None:
    billing = fake("src_bill", ["refund"], label="billing", behaviour="refuse", namespace="bill")
    tools = await resolve([BUILTIN, billing], ["builtin", "src_bill"], ["bill_refund", "clock_now"])
    (missing,) = tools.trace.allowlist_missing_entries
    assert missing.entry == "bill_refund"
    assert missing.possibly_from_skipped == "billing"


@pytest.mark.anyio
async def test_allowlist_patterns_admit_every_matching_tool() -> None:
    tools = await resolve([BUILTIN], None, ["json_*", "*_find"])
    assert tools.trace.tool_names_advertised == ["json_extract", "regex_find"]
    assert tools.trace.allowlist_filtered_out == ["clock_now", "http_request"]
    assert tools.trace.allowlist_missing_entries == []


@pytest.mark.anyio
async def test_a_pattern_that_matches_nothing_is_a_missing_entry() -> None:
    tools = await resolve([BUILTIN], None, ["crm_*", "clock_now"])
    assert [m.entry for m in tools.trace.allowlist_missing_entries] == ["crm_*"]


@pytest.mark.anyio
async def test_an_allowlist_whose_every_entry_is_stale_advertises_nothing() -> None:
    tools = await resolve([BUILTIN], None, ["send_email"])
    assert tools.trace.tool_names_advertised == []
    assert tools.trace.allowlist_filtered_out == BUILTIN_NAMES
    assert [m.entry for m in tools.trace.allowlist_missing_entries] == ["send_email"]


def test_an_empty_allowlist_allows_every_real_tool() -> None:
    assert apply_allowlist([], ["a", "b"]) == (["a", "b"], [], [])


@pytest.mark.parametrize(
    ("entry", "name", "expected"),
    [
        ("clock_now", "clock_now", True),
        ("clock", "clock_now", False),
        ("crm_*", "crm_lookup", True),
        ("crm_*", "crm", False),
        ("tool_?", "tool_1", True),
        ("tool_[ab]", "tool_c", False),
    ],
)
def test_allowlist_entries_match_exactly_or_as_shell_patterns(
    entry: str, name: str, expected: bool
) -> None:
    assert allowlist_matches(entry, name) is expected


def test_suggestions_put_namespace_matches_before_close_spellings() -> None:
    real = ["crm_lookup_order", "lookup_orders", "clock_now"]
    assert suggest_tool_names("lookup_order", real) == ["crm_lookup_order", "lookup_orders"]


def test_suggestions_also_strip_a_namespace_the_entry_carries() -> None:
    assert suggest_tool_names("old_ns_clock_now", ["clock_now", "regex_find"]) == ["clock_now"]


def test_suggestions_are_empty_when_nothing_is_close() -> None:
    assert suggest_tool_names("send_email", ["clock_now", "regex_find"]) == []


def test_a_stale_entry_with_nothing_alike_suggests_its_namespaces_tools() -> None:
    real = ["orders_lookup_order", "orders_list_orders", "crm_search"]
    assert suggest_tool_names("orders_create_ticket", real) == [
        "orders_lookup_order",
        "orders_list_orders",
    ]
    assert suggest_tool_names("zzz", real) == []
