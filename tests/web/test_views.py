"""The pure shaping behind the pages: the timeline, the trace's verdict, the chart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cairn.web import views
from cairn.web.pages import _prefix_bound

T0 = "2025-01-01T00:00:00+00:00"


def _event(seq: int, kind: str, ms: int, **data: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "kind": kind,
        "data": data,
        "created_at": f"2025-01-01T00:00:00.{ms:03d}+00:00",
    }


def test_text_deltas_of_a_turn_are_one_step_and_a_tool_call_is_paired_with_its_result() -> None:
    run = {
        "started_at": T0,
        "tool_calls": [{"call_id": "c1", "name": "json_extract", "duration_ms": 4.5}],
    }
    events = [
        _event(1, "text", 100, delta="Looking ", turn=0),
        _event(2, "text", 150, delta="it up.", turn=0),
        _event(3, "tool_call", 160, call_id="c1", name="json_extract", arguments={"path": "a"}),
        _event(4, "tool_result", 170, call_id="c1", name="json_extract", result="A-1"),
        _event(5, "text", 300, delta="Done.", turn=1),
        _event(6, "finish", 310, stop_reason="end_turn", usage={"tokens_in": 3}),
    ]

    steps = views.build_timeline(run, events)

    assert [step.kind for step in steps] == ["turn", "tool", "turn", "finish"]
    first, call, second, finish = steps
    assert first.text == "Looking it up."
    assert first.duration_ms == 150.0, "from the run's start to the turn's last delta"
    assert (call.name, call.arguments, call.result, call.pending) == (
        "json_extract",
        {"path": "a"},
        "A-1",
        False,
    )
    assert call.duration_ms == 4.5, "the duration the runner measured"
    assert second.duration_ms == 130.0, "from the tool result to the turn's text"
    assert finish.detail["stop_reason"] == "end_turn"


def test_a_tool_call_without_a_result_yet_is_pending() -> None:
    steps = views.build_timeline(
        {"started_at": T0}, [_event(1, "tool_call", 5, call_id="c1", name="clock_now")]
    )
    assert steps[0].pending


def test_a_trace_that_advertised_nothing_is_the_silent_no_op() -> None:
    view = views.trace_view(
        {
            "sources_resolved": [
                {"source_id": "builtin", "kind": "builtin", "label": "builtin", "tool_count": 4}
            ],
            "sources_skipped": [],
            "tool_names_advertised": [],
            "allowlist_filtered_out": ["clock_now", "json_extract"],
            "allowlist_missing_entries": [
                {"entry": "json_extrakt", "suggestions": ["json_extract"]}
            ],
        }
    )
    assert view.verdict == "bad"
    assert "No tool was advertised" in view.headline
    assert "1 allowlist entry matches no tool: json_extrakt" in view.notes
    assert "the allowlist removed all 2 tools the sources gave" in view.notes


def test_a_skipped_source_is_a_warning_with_its_reason_spelled_out() -> None:
    view = views.trace_view(
        {
            "sources_resolved": [],
            "sources_skipped": [
                {
                    "source_id": "src_1",
                    "kind": "user_mcp",
                    "label": "crm",
                    "reason": "unreachable",
                    "message": "refused",
                }
            ],
            "tool_names_advertised": ["clock_now"],
        }
    )
    assert view.verdict == "warn"
    assert view.sources[0].skipped
    assert view.sources[0].reason_meaning == "the server could not be reached or started"
    assert view.notes == ["1 source skipped: crm (unreachable)"]


def test_a_run_without_a_trace_says_it_ended_first() -> None:
    assert not views.trace_view(None).present


def test_the_chart_stacks_groups_per_bucket_and_folds_the_tail_into_others() -> None:
    groups = [(f"agent-{i}", [float(i + 1), 0.0, 2.0]) for i in range(10)]
    chart = views.stacked_chart(groups, datetime(2025, 1, 1, tzinfo=UTC), 3600, unit="tokens")
    assert len(chart.legend) == views.SERIES_COLOURS
    assert chart.legend[-1][1] == "3 others"
    first_bucket = [bar for bar in chart.bars if bar.x < chart.left + 10]
    assert sum(bar.height for bar in first_bucket) <= chart.height
    assert not chart.empty
    assert chart.summary.startswith("75 tokens over 3 bars; largest: 3 others with 33")


def test_an_empty_window_draws_no_bars() -> None:
    chart = views.stacked_chart([], datetime(2025, 1, 1, tzinfo=UTC), 3600, unit="tokens")
    assert chart.empty and not chart.bars


def test_costs_never_show_an_unpriced_run_as_free() -> None:
    assert views.fmt_cost(None) == "unpriced"
    assert views.fmt_cost(10) == "<$0.0001"
    assert views.fmt_cost(1_234_567) == "$1.2346"


def test_durations_read_naturally() -> None:
    assert [views.fmt_duration(v) for v in (None, 0.5, 42, 1250, 125_000)] == [
        "—",
        "0.50 ms",
        "42 ms",
        "1.25 s",
        "2 min 05 s",
    ]


def test_a_run_id_prefix_bound_is_the_next_id_in_the_alphabet() -> None:
    assert _prefix_bound("run_01ab") == "run_01ac"
    assert _prefix_bound("run_01az") == "run_01b"
    assert _prefix_bound("run_zz") is None
