"""Handshakes answered and recorded without firing; secrets pasted, generated and rotated
with two valid during a window; triggers filtering on a provider's real payload."""

from __future__ import annotations

import uuid

import httpx

from tests.triggers.conftest import Server
from tests.webhooks.helpers import make_hook
from tests.webhooks.senders import GitHub, Signed, Slack, Stripe, fixture


def test_github_ping_is_answered_and_recorded_without_firing(server: Server) -> None:
    hook = make_hook(server, "github", ["*"])
    delivery_id = str(uuid.uuid4())
    ping = GitHub("ping").sign(hook.secret, fixture("github", "ping"), delivery_id=delivery_id)
    answer = hook.post(ping)
    assert answer.status_code == 200, answer.text
    assert answer.json()["answered"] == "ping" and answer.json()["hook_id"] == 109948940
    (event,) = hook.events()
    assert event["event_id"] == answer.json()["event_id"]
    assert event["event_type"] == "ping" and event["decisions"] == []
    assert event["delivery"]["handshake"] == "ping"
    assert event["delivery"]["delivery_id"] == delivery_id
    assert event["delivery"]["headers"]["X-GitHub-Hook-ID"] == "109948940"
    with server.api() as api:
        assert api.get("/agents/watcher/runs").json()["runs"] == []
        explained = api.get(f"/events/{event['event_id']}/explain").json()
    assert [f["code"] for f in explained["findings"]] == ["handshake"]
    assert "GitHub's ping" in explained["summary"] and "never fires" in explained["summary"]


def test_a_badly_signed_ping_is_refused(server: Server) -> None:
    hook = make_hook(server, "github", ["*"])
    ping = GitHub("ping").sign("not-the-secret", fixture("github", "ping"), delivery_id="p-1")
    assert hook.post(ping).status_code == 401


def test_slack_url_verification_gets_its_challenge_back(server: Server) -> None:
    hook = make_hook(server, "slack", ["*"])
    body = fixture("slack", "url_verification")
    answer = hook.post(Slack().sign(hook.secret, body, delivery_id="unused"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["challenge"] == body["challenge"]
    (event,) = hook.events()
    assert event["delivery"]["handshake"] == "url_verification" and event["decisions"] == []
    forged = Slack().sign("0" * 32, body, delivery_id="unused")
    assert hook.post(forged).status_code == 401


def test_slack_retries_of_one_event_fire_once(server: Server) -> None:
    hook = make_hook(server, "slack", ["app_mention"])
    payload = fixture("slack", "app_mention")
    first = hook.post(Slack().sign(hook.secret, payload, delivery_id="Ev0RETRY1"))
    retry = hook.post(Slack(retry=1).sign(hook.secret, payload, delivery_id="Ev0RETRY1"))
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json()["duplicate"] is True and retry.json()["decisions"] == []
    assert len(hook.runs(1)) == 1
    (event,) = hook.events()
    assert event["payload"]["text"].startswith("What is the hour of the pearl")


def test_a_trigger_filters_on_the_providers_real_payload(server: Server) -> None:
    hook = make_hook(
        server, "github", ["issues.opened"], filters={"issues.opened": {"issue.labels.name": "bug"}}
    )
    bug = fixture("github", "issues.opened")
    docs = fixture("github", "issues.opened")
    docs["issue"]["labels"] = [{"name": "documentation", "color": "0075ca"}]
    fired = hook.post(GitHub("issues").sign(hook.secret, bug, delivery_id=str(uuid.uuid4())))
    skipped = hook.post(GitHub("issues").sign(hook.secret, docs, delivery_id=str(uuid.uuid4())))
    assert fired.json()["decisions"][0]["decision"] == "fired"
    (decision,) = skipped.json()["decisions"]
    assert decision["decision"] == "filtered_out"
    assert decision["detail"]["field"] == "issue.labels.name"
    assert decision["detail"]["actual"] == ["documentation"]
    (run,) = hook.runs(1)
    assert run["event_payload"]["issue"]["title"] == "Spelling error in the README file"


def _rotate(server: Server, label: str, **body: object) -> httpx.Response:
    with server.api() as api:
        return api.post(f"/sources/{label}/rotate-secret", json=body)


def test_after_a_rotation_both_secrets_verify_until_the_window_closes(server: Server) -> None:
    hook = make_hook(server, "github", ["issues.opened"])
    old = hook.secret
    rotated = _rotate(server, hook.label, overlap="24h")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["signing_secret"]
    assert new != old and rotated.json()["previous_valid_until"] is not None
    assert "previous_secret_until" in rotated.json()["source"]["config"]
    assert old not in rotated.text.replace(new, "")  # the old secret is never echoed
    payload = fixture("github", "issues.opened")
    with_old = hook.post(GitHub("issues").sign(old, payload, delivery_id="r-1"))
    with_new = hook.post(GitHub("issues").sign(new, payload, delivery_id="r-2"))
    assert (with_old.status_code, with_new.status_code) == (202, 202)
    used = {e["sender_event_id"]: e["delivery"]["secret_used"] for e in hook.events()}
    assert used == {"r-1": "previous", "r-2": "current"}
    closed = _rotate(server, hook.label, overlap="0")
    newest = closed.json()["signing_secret"]
    assert closed.json()["previous_valid_until"] is None
    assert hook.post(GitHub("issues").sign(new, payload, delivery_id="r-3")).status_code == 401
    assert hook.post(GitHub("issues").sign(newest, payload, delivery_id="r-4")).status_code == 202


def test_stripe_sends_one_signature_per_live_secret_while_rolling(server: Server) -> None:
    hook = make_hook(server, "stripe", ["invoice.paid"])
    rolled = "whsec_" + uuid.uuid4().hex + uuid.uuid4().hex[:16]
    assert _rotate(server, hook.label, signing_secret=rolled).status_code == 200
    payload = fixture("stripe", "invoice.paid")
    by_old = Stripe().sign(hook.secret, payload, delivery_id="evt_roll_1")
    by_new = Stripe().sign(rolled, payload, delivery_id="evt_roll_1")
    both = (
        by_old.headers["Stripe-Signature"]
        + ","
        + by_new.headers["Stripe-Signature"].split(",", 1)[1]
    )
    answer = hook.post(Signed(by_old.body, by_old.headers | {"Stripe-Signature": both}))
    assert answer.status_code == 202, answer.text
    (event,) = hook.events()
    assert event["delivery"]["secret_used"] == "current"


def test_a_source_awaiting_the_providers_secret_refuses_until_it_is_pasted(
    server: Server,
) -> None:
    with server.api() as api:
        made = api.post("/sources/webhooks", json={"label": "pay", "provider": "stripe"})
        assert made.status_code == 201, made.text
        assert made.json()["signing_secret"] is None
        assert made.json()["source"]["config"]["awaiting_secret"] is True
        url = server.url + made.json()["path"]
        secret = "whsec_" + uuid.uuid4().hex
        signed = Stripe().sign(secret, fixture("stripe", "invoice.paid"), delivery_id="evt_a1")
        refused = httpx.post(url, content=signed.body, headers=signed.headers)
        assert refused.status_code == 401 and "no signing secret yet" in refused.text
        event_id = api.get("/events", params={"source": "pay"}).json()["events"][0]["event_id"]
        explained = api.get(f"/events/{event_id}/explain").json()
        assert [f["code"] for f in explained["findings"]] == ["awaiting_secret"]
        assert "cairn source webhook rotate pay --secret" in explained["findings"][0]["fix"]
        generated = api.post("/sources/pay/rotate-secret", json={})
        assert generated.status_code == 400
        assert "Stripe issues the signing secret" in generated.json()["detail"]
        pasted = api.post("/sources/pay/rotate-secret", json={"signing_secret": secret})
        assert pasted.status_code == 200
        assert "awaiting_secret" not in pasted.json()["source"]["config"]
    accepted = httpx.post(url, content=signed.body, headers=signed.headers)
    assert accepted.status_code == 202, accepted.text


def test_bad_provider_choices_are_refused_with_the_remedy(server: Server) -> None:
    with server.api() as api:
        unknown = api.post("/sources/webhooks", json={"label": "x", "provider": "gitlab"})
        assert unknown.status_code == 400
        assert "unknown webhook provider 'gitlab'" in unknown.json()["detail"]
        assert "github" in unknown.json()["detail"] and "stripe" in unknown.json()["detail"]
        not_stripe = api.post(
            "/sources/webhooks",
            json={"label": "y", "provider": "stripe", "signing_secret": "sk_live_123456789"},
        )
        assert not_stripe.status_code == 400 and "whsec_" in not_stripe.json()["detail"]
        no_type = api.post("/sources/webhooks", json={"label": "z", "provider": "hmac"})
        assert no_type.status_code == 400 and "--type-path" in no_type.json()["detail"]
        labels = {source["label"] for source in api.get("/sources").json()}
        assert not labels & {"x", "y", "z"}
