"""Deliveries signed with each provider's own library, posted to a real server: documented
payloads fire the trigger of their type; tampered, wrongly signed, stale and replayed
deliveries are refused or deduplicated as the provider documents."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.triggers.conftest import Server
from tests.webhooks.helpers import make_hook
from tests.webhooks.senders import (
    GenericHmac,
    GitHub,
    Linear,
    Sender,
    Signed,
    Slack,
    Standard,
    Stripe,
    fixture,
)


@dataclass(frozen=True)
class Case:
    """One documented payload: its fixture, how it is sent, the type Cairn must derive."""

    fixture: str
    sender: Sender
    event_type: str


@dataclass(frozen=True)
class Provider:
    """A provider's cases, what it answers an accepted delivery with, where its type is."""

    name: str
    cases: list[Case]
    accepted: int
    type_from: str
    timestamped: bool
    options: dict[str, Any] | None = None


PROVIDERS = [
    Provider(
        "github",
        [
            Case("issues.opened", GitHub("issues"), "issues.opened"),
            Case("pull_request.closed", GitHub("pull_request"), "pull_request.closed"),
            Case("push", GitHub("push"), "push"),
        ],
        202,
        "X-GitHub-Event header",
        timestamped=False,
    ),
    Provider(
        "stripe",
        [
            Case(name, Stripe(), name)
            for name in (
                "payment_intent.succeeded",
                "invoice.paid",
                "customer.subscription.deleted",
            )
        ],
        202,
        "body.type",
        timestamped=True,
    ),
    Provider(
        "slack",
        [Case(name, Slack(), name) for name in ("app_mention", "message", "reaction_added")],
        200,
        "body.event.type",
        timestamped=True,
    ),
    Provider(
        "linear",
        [Case(name, Linear(), name) for name in ("Issue.create", "Issue.update", "Comment.create")],
        200,
        "body.type + body.action",
        timestamped=True,
    ),
    Provider(
        "standard",
        [
            Case(name, Standard(), name)
            for name in ("contact.created", "email.delivered", "invoice.paid")
        ],
        202,
        "body.type",
        timestamped=True,
    ),
    Provider(
        "hmac",
        [
            Case("orders_create", GenericHmac("orders/create"), "orders/create"),
            Case("ticket_created", GenericHmac("ticket/created"), "ticket/created"),
            Case("form_response", GenericHmac("form_response"), "form_response"),
        ],
        202,
        "X-Shop-Topic header",
        timestamped=False,
        options=GenericHmac.options,
    ),
]


def _sign(case: Case, provider: Provider, secret: str, **knobs: Any) -> Signed:
    delivery_id = knobs.pop("delivery_id", None) or str(uuid.uuid4())
    return case.sender.sign(
        secret, fixture(provider.name, case.fixture), delivery_id=delivery_id, **knobs
    )


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_documented_payloads_fire_the_trigger_of_their_type(
    server: Server, provider: Provider
) -> None:
    hook = make_hook(
        server, provider.name, [c.event_type for c in provider.cases], options=provider.options
    )
    fired = []
    for case in provider.cases:
        delivery_id = str(uuid.uuid4())
        answer = hook.post(_sign(case, provider, hook.secret, delivery_id=delivery_id))
        assert answer.status_code == provider.accepted, answer.text
        decisions = {d["trigger_id"]: d for d in answer.json()["decisions"]}
        mine = hook.triggers[case.event_type]
        assert decisions[mine]["decision"] == "fired"
        others = [d["decision"] for t, d in decisions.items() if t != mine]
        assert others == ["filtered_out"] * (len(provider.cases) - 1)
        fired.append(decisions[mine]["run_id"])
        with server.api() as api:
            event = api.get(f"/events/{answer.json()['event_id']}").json()
        assert event["event_type"] == case.event_type
        assert event["delivery"]["provider"] == provider.name
        assert event["delivery"]["type_from"].startswith(provider.type_from)
        assert event["delivery"]["secret_used"] == "current"
        if provider.name != "stripe":  # Stripe's id is the event's own, set by the sender
            assert event["delivery"]["delivery_id"] == delivery_id
        assert event["sender_event_id"] == event["delivery"]["delivery_id"]
    runs = hook.runs(len(provider.cases))
    assert sorted(r["run_id"] for r in runs) == sorted(fired)
    assert {r["status"] for r in runs} == {"succeeded"}
    by_trigger = {r["trigger_id"] for r in runs}
    assert by_trigger == set(hook.triggers.values())


@pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_tampered_wrongly_signed_stale_and_replayed_deliveries(
    server: Server, provider: Provider
) -> None:
    case = provider.cases[0]
    hook = make_hook(server, provider.name, [case.event_type], options=provider.options)
    good = _sign(case, provider, hook.secret)
    tampered = hook.post(Signed(good.body.replace(b"}", b',"x":1}', 1), good.headers))
    assert tampered.status_code == 401, tampered.text
    assert "bad signature" in tampered.json()["detail"]
    other_secret = make_other_secret(hook.secret)
    wrong = hook.post(_sign(case, provider, other_secret))
    assert wrong.status_code == 401
    refusals = ["bad_signature", "bad_signature"]
    if provider.timestamped:
        stale = hook.post(_sign(case, provider, hook.secret, at=time.time() - 3600))
        assert stale.status_code == 401, stale.text
        assert "stale" in stale.json()["detail"]
        refusals.append("stale")
    first = hook.post(good)
    assert first.status_code == provider.accepted, first.text
    again = hook.post(good)  # the sender's retry: the same delivery id, freshly sent
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["event_id"] == first.json()["event_id"]
    assert len(hook.runs(1)) == 1
    events = hook.events()
    rejected = [e for e in reversed(events) if e["status"] == "rejected"]
    assert [e["delivery"]["refusal"] for e in rejected] == refusals
    assert {e["delivery"]["provider"] for e in rejected} == {provider.name}
    assert all(e["payload"] is None for e in rejected)
    accepted = [e for e in events if e["status"] == "accepted"]
    assert len(accepted) == 1
    with server.api() as api:
        trigger = api.get(f"/triggers/{hook.triggers[case.event_type]}").json()
    assert trigger["fire_count"] == 1


def make_other_secret(secret: str) -> str:
    """A secret of the same shape that is not ``secret``."""
    return secret[:-4] + ("bbbb" if secret.endswith("aaaa") else "aaaa")
