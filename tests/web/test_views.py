"""The pure shaping behind the pages: the timeline, the trace's verdict, the chart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cairn.web import views
from cairn.web.run_lists import _prefix_bound

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


def test_tool_resolution_is_a_step_of_its_own_and_not_counted_in_the_first_turn() -> None:
    run = {
        "started_at": T0,
        "duration_ms": 400.0,
        "tool_resolution_trace": {"duration_ms": 100.0, "tool_names_advertised": ["a", "b"]},
    }
    events = [_event(1, "text", 250, delta="Hi", turn=0), _event(2, "finish", 260)]

    steps = views.build_timeline(run, events)

    assert [step.kind for step in steps] == ["resolve", "turn", "finish"]
    assert steps[0].duration_ms == 100.0 and steps[0].detail["advertised"] == 2
    assert steps[1].duration_ms == 150.0, "from the end of resolution, not from the start"
    bars = views.waterfall(run, steps)
    assert [(b.kind, b.start_ms, b.duration_ms) for b in bars] == [
        ("resolve", 0.0, 100.0),
        ("turn", 100.0, 150.0),
    ]
    assert bars[1].left_pct == 25.0 and bars[1].width_pct == 37.5


def test_a_cancel_is_a_cancelled_step_not_an_error() -> None:
    events = [_event(1, "error", 5, message="the run was cancelled", error_type="cancelled")]
    assert [s.kind for s in views.build_timeline({"started_at": T0}, events)] == ["cancelled"]


def test_a_run_that_succeeded_with_a_skipped_source_is_partial_and_says_why() -> None:
    run = {
        "status": "succeeded",
        "outcome": "acted",
        "tool_calls": [{"name": "clock_now"}],
        "tool_resolution_trace": {
            "sources_skipped": [{"source_id": "src_1", "label": "crm", "reason": "unreachable"}]
        },
    }
    signal = views.run_signal(run)
    assert signal.health == "partial"
    assert "crm skipped (unreachable)" in signal.note
    assert views.run_signal({**run, "tool_resolution_trace": {}}).health == "ok"
    failed = views.run_signal({"status": "failed", "error_message": "upstream said 500\nmore"})
    assert failed == views.Signal("bad", "upstream said 500")


def test_outcome_meanings_read_as_sentences_of_their_own() -> None:
    for meaning in views.OUTCOME_MEANINGS.values():
        assert not meaning.startswith(("nothing", "called")), meaning
    assert views.sentence("no tool was advertised") == "No tool was advertised"


def test_backticked_commands_become_code_and_everything_else_is_escaped() -> None:
    html = views.inline_code("Run `cairn agent show <x>` & see `v1=`")
    assert html == (
        'Run <code class="copyable">cairn agent show &lt;x&gt;</code> &amp; see <code>v1=</code>'
    )


def test_costs_say_pending_while_running_and_zero_without_tokens() -> None:
    assert views.run_cost({"status": "running", "cost_micros": None}) == "pending"
    assert views.run_cost({"status": "failed", "cost_micros": None, "tokens_in": 0}) == "$0.0000"
    assert views.run_cost({"status": "failed", "cost_micros": None, "tokens_in": 9}) == "unpriced"
    assert views.total_cost({"runs": 0, "cost_micros": None}) == "—"
    assert views.total_cost({"runs": 2, "cost_micros": None}) == "unpriced"


def test_relative_times_and_short_axis_labels() -> None:
    now = datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
    assert views.fmt_ago("2025-01-01T00:58:00+00:00", now) == "2 min ago"
    assert views.fmt_ago("2024-12-30T01:00:00+00:00", now) == "2 d ago"
    assert [views.fmt_short(v) for v in (950, 12_345, 250_000, 4_500_000)] == [
        "950",
        "12.3k",
        "250k",
        "4.5M",
    ]


def test_a_filter_decision_reads_as_a_phrase() -> None:
    detail = {"filter": "filter_config", "field": "channel", "expected": "C123", "missing": True}
    assert views.decision_reason("filtered_out", detail) == 'channel missing, wanted "C123"'
    event_type = {"filter": "event_type_filter", "expected": "a.b", "actual": "c.d"}
    assert views.decision_reason("filtered_out", event_type) == "event type 'c.d', wanted 'a.b'"


def test_the_share_of_tokens_is_of_the_total_not_of_the_top_spender() -> None:
    report = {
        "since": T0,
        "until": T0,
        "bucket_s": 3600,
        "rows": [
            {"key": "a", "tokens": 300, "series": [300], "cost_micros": 0},
            {"key": "b", "tokens": 100, "series": [100], "cost_micros": 0},
        ],
        "totals": {},
    }
    context = views.usage_context(report, {"since": T0, "rows": []})
    assert [row["share"] for row in context["spenders"]] == [75, 25]


def test_previous_goes_back_along_the_trail_of_cursors() -> None:
    from cairn.web.run_lists import RunFilters

    first = RunFilters(agent="x")
    second_query = first.next_query("run_b")
    assert "before=run_b" in second_query and "trail" not in second_query
    second = RunFilters(agent="x", before="run_b")
    third = RunFilters(agent="x", before="run_c", trail="run_b")
    assert "trail=run_b" in second.next_query("run_c")
    assert third.previous_query() == "agent=x&before=run_b"
    assert second.previous_query() == "agent=x"
