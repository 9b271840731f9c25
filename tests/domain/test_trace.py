"""The tool-resolution trace's stored form and its closed vocabulary of skip reasons."""

from __future__ import annotations

from typing import get_args

from cairn.domain.trace import (
    SKIP_REASONS,
    MissingEntry,
    SkipReason,
    SourceResolved,
    SourceSkipped,
    ToolResolutionTrace,
)


def test_the_skip_reason_tuple_lists_exactly_the_literal_vocabulary() -> None:
    assert set(SKIP_REASONS) == set(get_args(SkipReason))
    assert len(SKIP_REASONS) == len(set(SKIP_REASONS))


def test_the_module_docstring_documents_every_skip_reason() -> None:
    import cairn.domain.trace as trace_module

    doc = trace_module.__doc__ or ""
    missing = [reason for reason in SKIP_REASONS if f"``{reason}``" not in doc]
    assert missing == []


def test_a_full_trace_round_trips_through_its_stored_form() -> None:
    trace = ToolResolutionTrace(
        sources_resolved=[
            SourceResolved("builtin", "builtin", "builtin", 4, 0.5),
            SourceResolved("src_1", "user_mcp", "crm", 3, 12.25, ["delete_all"]),
        ],
        sources_skipped=[
            SourceSkipped("src_2", "user_mcp", "billing", "auth_refused", "billing: 401"),
        ],
        tool_names_advertised=["clock_now", "crm_lookup_order"],
        allowlist_filtered_out=["http_request"],
        allowlist_missing_entries=[
            MissingEntry("lookup_order", ["crm_lookup_order"]),
            MissingEntry("billing_refund", [], "billing"),
        ],
        duration_ms=20.0,
        name_conflicts=["search (docs)"],
    )
    stored = trace.to_dict()
    assert stored["sources_skipped"][0]["reason"] == "auth_refused"
    assert stored["allowlist_missing_entries"][1]["possibly_from_skipped"] == "billing"
    assert stored["sources_resolved"][1]["hidden_by_source"] == ["delete_all"]
    assert ToolResolutionTrace.from_dict(stored) == trace


def test_an_old_stored_trace_without_newer_fields_still_loads() -> None:
    loaded = ToolResolutionTrace.from_dict({"tool_names_advertised": ["clock_now"]})
    assert loaded.tool_names_advertised == ["clock_now"]
    assert loaded.name_conflicts == []
    assert loaded.sources_skipped == []
