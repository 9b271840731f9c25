"""``events explain``, why-not-fired and ``events list`` on provider deliveries: the provider,
its delivery id and where the type came from; refusals in the provider's own terms."""

from __future__ import annotations

import time
import uuid

import pytest

from cairn.errors import DeliveryRejected
from cairn.services.app import App
from cairn.services.diagnosis import explain_event, why_not_fired
from cairn.services.ingest import ingest, record_rejected
from cairn.services.triggers import create_trigger
from cairn.services.webhooks import add_webhook_source
from cairn.webhooks import read_delivery
from tests.cli.conftest import Cli
from tests.cli.conftest import cli as cli
from tests.diagnosis.helpers import SANDBOX, make_agent, only
from tests.webhooks.helpers import provider_secret
from tests.webhooks.senders import GitHub, Slack, fixture


async def _deliver(app: App, label: str, headers: dict[str, str], body: bytes) -> str:
    """What ``POST /hooks/…`` does with a delivery, without the HTTP: verify and map with
    the source's provider, then ingest, or record the refusal."""
    from cairn.store import sources as source_store

    with app.store.connect() as conn:
        source = source_store.get_source(conn, SANDBOX, label, app.secrets)
    try:
        delivery = read_delivery(source, headers, body)
    except DeliveryRejected as rejected:
        return record_rejected(app, source, str(rejected), rejected.facts)
    result = await ingest(
        app,
        source,
        delivery.event_type,
        delivery.payload,
        delivery.sender_event_id,
        delivery=delivery.facts,
    )
    return result.event_id


@pytest.mark.anyio
async def test_a_github_delivery_is_explained_with_its_provider_and_delivery_id(app: App) -> None:
    await make_agent(app, "Seen.", slug="triage")
    made = add_webhook_source(app, SANDBOX, "gh", provider="github")
    assert made.secret
    trigger = create_trigger(app, SANDBOX, "triage", "gh", event_type_filter="issues.closed")
    signed = GitHub("issues").sign(
        made.secret, fixture("github", "issues.opened"), delivery_id="72d3162e-cc78-11e3"
    )
    event_id = await _deliver(app, "gh", signed.headers, signed.body)
    explained = explain_event(app, SANDBOX, event_id)
    assert explained.summary.startswith(
        f"Event {event_id} (issues.opened on source gh, GitHub delivery 72d3162e-cc78-11e3, "
        "type from X-GitHub-Event header + body.action)"
    )
    finding = only(explained, "filtered_out")
    assert "--event-type issues.opened" in finding.fix
    why = why_not_fired(app, SANDBOX, "triage")
    assert why.summary.startswith(
        f"triage did not fire on its last event, {event_id} (issues.opened on source gh, "
        "GitHub delivery 72d3162e-cc78-11e3, type from X-GitHub-Event header + body.action)"
    )
    assert trigger.trigger_id in why.summary


@pytest.mark.anyio
async def test_a_stale_slack_delivery_is_explained_in_slacks_terms(app: App) -> None:
    secret = provider_secret("slack")
    made = add_webhook_source(app, SANDBOX, "team", provider="slack", secret=secret)
    assert made.secret == secret
    assert secret is not None
    signed = Slack().sign(
        secret, fixture("slack", "message"), delivery_id="Ev1", at=time.time() - 900
    )
    event_id = await _deliver(app, "team", signed.headers, signed.body)
    explained = explain_event(app, SANDBOX, event_id)
    finding = only(explained, "stale_delivery")
    assert "more than 300 s from the server's clock" in finding.cause
    assert "replayed or long-delayed Slack request" in finding.fix
    assert finding.evidence["provider"] == "slack" and finding.evidence["refusal"] == "stale"


@pytest.mark.anyio
async def test_a_wrong_github_secret_names_its_header_and_where_to_find_the_secret(
    app: App,
) -> None:
    add_webhook_source(app, SANDBOX, "gh", provider="github")
    signed = GitHub("push").sign("wrong", fixture("github", "push"), delivery_id=str(uuid.uuid4()))
    event_id = await _deliver(app, "gh", signed.headers, signed.body)
    finding = only(explain_event(app, SANDBOX, event_id), "bad_signature")
    assert "its X-Hub-Signature-256 does not match" in finding.cause
    assert "Secret field" in finding.fix and "cairn source webhook rotate gh" in finding.fix


def test_the_cli_adds_a_github_source_rotates_it_and_lists_deliveries(cli: Cli) -> None:
    added = cli("source", "webhook", "add", "gh", "--provider", "github")
    assert added.exit_code == 0, added.stderr
    assert "added github webhook source gh" in added.stdout
    assert "signing secret: " in added.stdout and "Settings → Webhooks" in added.stdout
    as_json = cli("source", "webhook", "add", "pay", "--provider", "stripe", "--json")
    assert as_json.json()["signing_secret"] is None
    pasted = cli("source", "webhook", "rotate", "pay", "--secret", "whsec_" + "a" * 32)
    assert pasted.exit_code == 0 and "now verifies with the pasted secret" in pasted.stdout
    assert "whsec_aaaa" not in pasted.stdout
    rotated = cli("source", "webhook", "rotate", "gh", "--overlap", "1h")
    assert rotated.exit_code == 0 and "the previous secret keeps verifying until" in rotated.stdout
    shop = cli(
        "source",
        "webhook",
        "add",
        "shop",
        "--provider",
        "hmac",
        "--header",
        "X-Shop-Hmac-Sha256",
        "--encoding",
        "base64",
        "--type-header",
        "X-Shop-Topic",
        "--json",
    )
    assert shop.exit_code == 0, shop.stderr
    options = shop.json()["source"]["config"]["provider_options"]
    assert options["header"] == "X-Shop-Hmac-Sha256" and options["type_header"] == "X-Shop-Topic"
    bad = cli("source", "webhook", "add", "gl", "--provider", "gitlab")
    assert bad.exit_code != 0 and "unknown webhook provider 'gitlab'" in bad.stderr


def test_events_list_shows_the_provider_delivery_and_type_source(app: App, cli: Cli) -> None:
    import anyio

    made = add_webhook_source(app, SANDBOX, "gh", provider="github")
    assert made.secret
    signed = GitHub("pull_request").sign(
        made.secret, fixture("github", "pull_request.closed"), delivery_id="d-list-1"
    )
    ping = GitHub("ping").sign(made.secret, fixture("github", "ping"), delivery_id="d-ping")

    async def deliver_both() -> None:
        await _deliver(app, "gh", signed.headers, signed.body)
        from cairn.services.webhooks import record_handshake
        from cairn.store import sources as source_store

        with app.store.connect() as conn:
            source = source_store.get_source(conn, SANDBOX, "gh", app.secrets)
        got = read_delivery(source, ping.headers, ping.body)
        record_handshake(app, source, got.event_type, got.payload, got.sender_event_id, got.facts)

    anyio.run(deliver_both)
    listed = cli("events", "list", "--source", "gh")
    assert listed.exit_code == 0, listed.stderr
    assert (
        "via github delivery d-list-1; type from X-GitHub-Event header + body.action"
        in listed.stdout
    )
    assert "pull_request.closed" in listed.stdout
    assert "ping answered; handshakes never fire" in listed.stdout
