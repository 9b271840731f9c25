"""``events explain`` and ``why-not-fired``, from decisions recorded by real ingestion:
events delivered with ``ingest`` to triggers on a webhook source, and refused deliveries
recorded with the verifier's own reasons."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from cairn.domain.sources import DataSource
from cairn.services.agents import set_archived
from cairn.services.app import App
from cairn.services.diagnosis import explain_event, why_not_fired
from cairn.services.ingest import ingest, record_rejected
from cairn.services.triggers import create_trigger, update_trigger
from cairn.services.webhooks import DeliveryRejected, add_webhook_source, sign
from cairn.store.schema import events as events_table
from cairn.webhooks import read_delivery
from tests.diagnosis.helpers import SANDBOX, make_agent, only

pytestmark = pytest.mark.anyio


async def _setup(app: App, **trigger: object) -> tuple[DataSource, str]:
    await make_agent(app, [{"tool_calls": [{"name": "clock_now"}]}, "Done."], slug="triage")
    source = add_webhook_source(app, SANDBOX, "github").source
    made = create_trigger(app, SANDBOX, "triage", "github", **trigger)  # type: ignore[arg-type]
    return source, made.trigger_id


async def test_an_event_of_another_type_names_the_type_filter(app: App) -> None:
    source, trigger_id = await _setup(app, event_type_filter="issue.opened")
    result = await ingest(app, source, "issue.closed", {"title": "x"})
    explained = explain_event(app, SANDBOX, result.event_id)
    finding = only(explained, "filtered_out")
    assert finding.cause == (
        f"Trigger {trigger_id} (agent triage) filtered it out: its event_type_filter wants "
        "'issue.opened', but this event is 'issue.closed'."
    )
    assert f"cairn agent trigger update {trigger_id} --event-type issue.closed" in finding.fix
    assert finding.evidence["filter"] == "event_type_filter"
    assert (finding.evidence["expected"], finding.evidence["actual"]) == (
        "issue.opened",
        "issue.closed",
    )
    assert explained.kind == "event"
    assert explained.summary.startswith(
        f"Event {result.event_id} (issue.closed on source github): Trigger"
    )


async def test_a_payload_filter_names_field_expected_and_actual(app: App) -> None:
    source, trigger_id = await _setup(app, filter_config={"labels": "bug", "repo": "web"})
    result = await ingest(app, source, "issue.opened", {"labels": ["docs"], "repo": "web"})
    finding = only(explain_event(app, SANDBOX, result.event_id), "filtered_out")
    assert "its filter_config wants 'labels' to be \"bug\", but the payload's 'labels' is" in (
        finding.cause
    )
    assert '["docs"]' in finding.cause
    assert finding.evidence["field"] == "labels"
    assert finding.evidence["expected"] == "bug"
    assert finding.evidence["actual"] == ["docs"]
    assert (
        f"""cairn agent trigger update {trigger_id} --filter """
        """'{"labels": ["bug", "docs"], "repo": "web"}'"""
    ) in finding.fix


async def test_a_missing_payload_field_says_it_is_missing(app: App) -> None:
    source, trigger_id = await _setup(app, filter_config={"channel": "C1"})
    result = await ingest(app, source, "message.created", {"text": "hi"})
    finding = only(explain_event(app, SANDBOX, result.event_id), "filtered_out")
    assert "but the payload has no 'channel'" in finding.cause
    assert finding.evidence["missing"] is True
    assert f"cairn agent trigger update {trigger_id} --filter null" in finding.fix


async def test_a_rate_limited_event_gives_the_window_and_the_count(app: App) -> None:
    source, trigger_id = await _setup(app, rate_limit_per_hour=1)
    await ingest(app, source, "issue.opened", {"n": 1})
    second = await ingest(app, source, "issue.opened", {"n": 2})
    finding = only(explain_event(app, SANDBOX, second.event_id), "rate_limited")
    assert "already fired 1 times in the hourly window that began at" in finding.cause
    assert "(cap 1 per hour)" in finding.cause
    assert finding.evidence["fires_in_window"] == 1
    assert finding.evidence["rate_limit_per_hour"] == 1
    assert finding.evidence["window_started_at"]
    assert f"cairn agent trigger update {trigger_id} --rate-limit 2" in finding.fix


DASHBOARD_PHRASES = {
    "type": "event type 'issue.closed', wanted 'issue.opened'",
    "missing": 'channel missing, wanted "C1"',
    "mismatch": 'repo was "api", wanted "web"',
    "paused": "the trigger is paused",
    "archived": "agent triage is archived",
    "rate_limited": "over its hourly rate limit (1 fires this hour)",
}


@pytest.mark.parametrize("case", DASHBOARD_PHRASES)
async def test_the_dashboard_reads_each_decision_as_recorded(app: App, case: str) -> None:
    """Every decision kind but ``fired``, recorded by real ingestion, read by the dashboard
    from the detail the ledger keeps (a key it misreads falls back to raw JSON)."""
    from cairn.services.events import get_event
    from cairn.web.views import decision_reason

    settings: dict[str, dict[str, object]] = {
        "type": {"event_type_filter": "issue.opened"},
        "missing": {"filter_config": {"channel": "C1"}},
        "mismatch": {"filter_config": {"repo": "web"}},
        "rate_limited": {"rate_limit_per_hour": 1},
    }
    source, trigger_id = await _setup(app, **settings.get(case, {}))
    if case == "paused":
        update_trigger(app, SANDBOX, trigger_id, status="paused")
    if case == "archived":
        set_archived(app, SANDBOX, "triage", True)
    if case == "rate_limited":
        await ingest(app, source, "issue.opened", {"n": 1})
    event_type = "issue.closed" if case == "type" else "issue.opened"
    result = await ingest(app, source, event_type, {"text": "hi", "repo": "api"})
    (decision,) = get_event(app, SANDBOX, result.event_id).decisions or []
    assert decision.decision != "fired"
    assert decision_reason(decision.decision, decision.detail) == DASHBOARD_PHRASES[case]


async def test_a_paused_trigger_says_how_to_resume(app: App) -> None:
    source, trigger_id = await _setup(app)
    update_trigger(app, SANDBOX, trigger_id, status="paused")
    result = await ingest(app, source, "issue.opened", {})
    explained = explain_event(app, SANDBOX, result.event_id)
    finding = only(explained, "trigger_paused")
    assert "was paused when the event came, so it did not fire (it is still paused)" in (
        finding.cause
    )
    assert f"cairn agent trigger resume {trigger_id}" in finding.fix
    assert finding.evidence["decision"]["decision"] == "paused"


async def test_an_archived_agent_says_how_to_unarchive(app: App) -> None:
    source, _ = await _setup(app)
    set_archived(app, SANDBOX, "triage", True)
    result = await ingest(app, source, "issue.opened", {})
    finding = only(explain_event(app, SANDBOX, result.event_id), "agent_archived")
    assert "Agent triage is archived" in finding.cause
    assert "cairn agent unarchive triage" in finding.fix


async def test_a_full_backlog_refuses_the_event_before_recording_anything(app: App) -> None:
    from cairn.errors import Busy
    from cairn.execution.base import BacklogGate
    from cairn.execution.embedded import EmbeddedBackend

    source, _ = await _setup(app)
    app.executor = EmbeddedBackend(app)
    app._gate = BacklogGate(app, limit=1)
    try:
        first = await ingest(app, source, "issue.opened", {"title": "x"})
        assert [d.decision for d in first.decisions] == ["fired"]
        with pytest.raises(Busy) as refused:
            await ingest(app, source, "issue.opened", {"title": "y"})
    finally:
        app.executor = None
    assert refused.value.retry_after_s >= 1
    with app.store.connect() as conn:
        count = conn.execute(select(func.count()).select_from(events_table)).scalar_one()
    assert count == 1, "the refused event is not in the ledger"


async def test_a_fired_event_points_at_its_run(app: App) -> None:
    source, trigger_id = await _setup(app)
    result = await ingest(app, source, "issue.opened", {})
    run_id = result.decisions[0].run_id
    explained = explain_event(app, SANDBOX, result.event_id)
    finding = only(explained, "fired")
    assert finding.cause == (
        f"Trigger {trigger_id} (agent triage) fired: run {run_id} (succeeded, acted)."
    )
    assert finding.evidence["run"]["outcome"] == "acted"


async def test_an_event_on_a_source_without_trigger_says_how_to_bind_one(app: App) -> None:
    source = add_webhook_source(app, SANDBOX, "alerts").source
    result = await ingest(app, source, "alert.fired", {})
    finding = only(explain_event(app, SANDBOX, result.event_id), "no_trigger")
    assert finding.cause == "No trigger is bound to source 'alerts', so the event fired nothing."
    assert "cairn agent trigger create AGENT --source alerts --event-type alert.fired" in (
        finding.fix
    )


def _refused(
    source: DataSource, *, timestamp: str | None, signature: str | None, body: bytes
) -> str:
    headers = {"X-Cairn-Timestamp": timestamp, "X-Cairn-Signature": signature}
    try:
        read_delivery(source, {k: v for k, v in headers.items() if v is not None}, body)
    except DeliveryRejected as rejected:
        return str(rejected)
    raise AssertionError("the delivery was accepted")


@pytest.mark.parametrize(
    ("case", "code", "fix"),
    [
        ("bad_signature", "bad_signature", "sign with this source's signing secret"),
        ("stale", "stale_delivery", "sign each attempt (retries too) with the current time"),
        ("unsigned", "unsigned_delivery", "send both headers with every request"),
        ("malformed", "malformed_delivery", 'send a JSON object {"type": "<event type>"'),
    ],
)
async def test_a_refused_delivery_says_what_to_fix_on_the_sender(
    app: App, case: str, code: str, fix: str
) -> None:
    made = add_webhook_source(app, SANDBOX, "github")
    assert made.secret is not None  # Cairn's envelope: generated at creation
    body = json.dumps({"type": "issue.opened", "payload": {}}).encode()
    now = str(int(time.time()))
    if case == "bad_signature":
        reason = _refused(made.source, timestamp=now, signature=sign("wrong", now, body), body=body)
    elif case == "stale":
        old = str(int(time.time()) - 3600)
        reason = _refused(
            made.source, timestamp=old, signature=sign(made.secret, old, body), body=body
        )
    elif case == "unsigned":
        reason = _refused(made.source, timestamp=None, signature=None, body=body)
    else:
        bad = b"{not json"
        reason = _refused(
            made.source, timestamp=now, signature=sign(made.secret, now, bad), body=bad
        )
    event_id = record_rejected(app, made.source, reason)
    explained = explain_event(app, SANDBOX, event_id)
    assert explained.codes() == [code]
    finding = explained.findings[0]
    assert finding.severity == "error"
    assert "The delivery to 'github' was refused" in finding.cause
    assert fix in finding.fix
    assert finding.evidence["reject_reason"] == reason
    assert explained.summary.startswith(f"Event {event_id} (refused delivery on source github)")


async def test_why_not_fired_without_any_trigger(app: App) -> None:
    await make_agent(app, "hi", slug="triage")
    add_webhook_source(app, SANDBOX, "github")
    explained = why_not_fired(app, SANDBOX, "triage")
    assert explained.kind == "agent"
    finding = only(explained, "no_trigger")
    assert finding.cause == "Agent triage has no trigger, so no event ever fires it."
    assert "cairn agent trigger create triage --source github" in finding.fix
    assert finding.evidence["triggers"] == []


async def test_why_not_fired_before_any_event_arrived(app: App) -> None:
    _, trigger_id = await _setup(app)
    update_trigger(app, SANDBOX, trigger_id, status="paused")
    explained = why_not_fired(app, SANDBOX, "triage")
    assert explained.codes() == ["no_events", "trigger_paused"]
    finding = explained.findings[0]
    assert "No event has reached github" in finding.cause
    assert "/hooks/src_" in finding.fix
    assert f"cairn agent trigger resume {trigger_id}" in explained.findings[1].fix


async def test_why_not_fired_explains_the_agents_last_event(app: App) -> None:
    source, trigger_id = await _setup(app, event_type_filter="issue.opened")
    await ingest(app, source, "issue.opened", {"n": 1})
    last = await ingest(app, source, "issue.closed", {"n": 2})
    explained = why_not_fired(app, SANDBOX, "triage")
    assert explained.subject == "triage"
    finding = only(explained, "filtered_out")
    assert finding.evidence["decision"]["event_id"] == last.event_id
    assert explained.summary.startswith(
        f"triage did not fire on its last event, {last.event_id} (issue.closed on source "
        "github): Trigger"
    )
    assert "--event-type issue.closed" in finding.fix
    assert trigger_id in finding.cause
