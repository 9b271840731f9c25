"""How the Concierge reads questions: pure parsing, no ledger."""

from __future__ import annotations

import pytest

from cairn.services.concierge.questions import (
    cited_run_ids,
    commands_in,
    parse_question,
)

SLUGS = ["support", "support-bot", "triage", "concierge"]
RUN = "run_01m8jsysq30340k3e5hs5xnc03"


@pytest.mark.parametrize(
    ("question", "intent", "agent"),
    [
        ("Show me the last 20 runs for the support agent", "list_runs", "support"),
        ("Why didn't run run_abc123 use any tools?", "explain_run", None),
        (
            'Test the triage agent with this fake event: {"title": "broken checkout"}',
            "test_fire",
            "triage",
        ),
        ("What tools does my support agent have right now?", "agent_tools", "support"),
        ("Why didn't the triage agent fire on the last event?", "why_not_fired", "triage"),
        ("Which agent used the most tokens today?", "usage", None),
        ("pause trigger trg_01m8jsysqh79yc27mx64y3v3h1", "pause_trigger", None),
        ("Resume trigger trg_01m8jsysqh79yc27mx64y3v3h1", "resume_trigger", None),
        ("Delete trigger trg_01m8jsysqh79yc27mx64y3v3h1", "destructive", None),
        ("Please destroy the support agent", "destructive", "support"),
        ("Why didn't event evt_01m8jsysqm9ypadtc45x72d5sx fire anything?", "explain_event", None),
        ("Why didn't the support agent's last run use any tools?", "explain_last", "support"),
        ("What needs fixing?", "doctor", None),
        ("What is the meaning of life?", "help", None),
    ],
)
def test_each_example_question_is_read_as_what_it_asks(
    question: str, intent: str, agent: str | None
) -> None:
    parsed = parse_question(question, SLUGS)
    assert parsed.intent == intent
    assert parsed.agent == agent


def test_a_json_payload_is_taken_out_of_the_question_whole() -> None:
    parsed = parse_question(
        'Test the triage agent with this fake event: {"title": "broken checkout", "n": [1, 2]}',
        SLUGS,
    )
    assert parsed.has_payload
    assert parsed.payload == {"title": "broken checkout", "n": [1, 2]}
    assert "broken" not in parsed.text


def test_the_limit_is_the_number_of_runs_asked_for_not_a_window() -> None:
    assert parse_question("Show me the last 20 runs for support", SLUGS).limit == 20
    assert parse_question("show 5 runs of triage", SLUGS).limit == 5
    days = parse_question("runs of triage in the last 3 days", SLUGS)
    assert days.limit is None
    assert days.since_s == 3 * 86400
    assert days.window == "in the last 3 days"


def test_today_is_since_local_midnight_and_says_so() -> None:
    parsed = parse_question("Which agent used the most tokens today?", SLUGS)
    assert parsed.since_s is not None and 0 < parsed.since_s <= 86400
    assert parsed.window is not None and parsed.window.startswith("since midnight (")
    assert "local time" in parsed.window


def test_a_slug_beside_the_word_agent_wins_over_a_longer_one_elsewhere() -> None:
    assert parse_question("runs of the support-bot agent", SLUGS).agent == "support-bot"
    assert parse_question("compare support-bot with the triage agent", SLUGS).agent == "triage"


def test_an_agent_that_does_not_exist_is_noticed() -> None:
    parsed = parse_question("Show me the runs of the billing agent", SLUGS)
    assert parsed.agent is None
    assert parsed.unknown_agent == "billing"
    assert parse_question("Which agent used the most tokens?", SLUGS).unknown_agent is None


def test_mentioning_tests_or_pauses_in_a_question_changes_nothing() -> None:
    assert parse_question("Show me the last 5 test runs of support", SLUGS).intent == "list_runs"
    assert parse_question("Why is the triage trigger paused?", SLUGS).intent != "pause_trigger"
    assert (
        parse_question("Why was trigger trg_01m8jsysqh79yc27mx64y3v3h1 paused?", SLUGS).intent
        != "pause_trigger"
    )


def test_usage_groups_follow_the_question() -> None:
    assert parse_question("which trigger spent the most tokens", SLUGS).usage_by == "trigger"
    assert parse_question("token usage by model this week", SLUGS).usage_by == "model"
    assert parse_question("hourly token usage", SLUGS).usage_by == "hour"
    assert parse_question("which agent used the most tokens in the last hour", SLUGS).usage_by == (
        "agent"
    )


def test_hints_carry_what_was_found_for_a_concierge_agent() -> None:
    hints = parse_question(f"Why didn't run {RUN} of support use tools?", SLUGS).hints()
    assert hints["run_ids"] == [RUN]
    assert hints["agents"] == ["support"]
    assert hints["question"].startswith("Why didn't run")


def test_cited_run_ids_and_commands_are_found_in_answers() -> None:
    text = f"See {RUN} and {RUN}; fix: `cairn agent update x --tool-sources default`."
    assert cited_run_ids(text) == [RUN]
    assert cited_run_ids(text, exclude=RUN) == []
    assert commands_in(text) == ["cairn agent update x --tool-sources default"]
    assert cited_run_ids("run_abc123 is not a run id") == []
