"""Each provider's verify-and-map on its own: the less common shapes its sender may use,
and what the registry and the delivery facts promise."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from cairn.domain.sources import DataSource
from cairn.errors import DeliveryRejected, UnknownWebhookProvider, UsageError
from cairn.webhooks import read_delivery
from cairn.webhooks.base import Delivery, Incoming, WebhookProvider
from cairn.webhooks.registry import get_provider, webhook_providers
from tests.webhooks.senders import GitHub, Linear, Standard, fixture


def source(provider: str, secret: str, **options: str) -> DataSource:
    config: dict[str, object] = {"provider": provider, "path": "/hooks/src_x"}
    if options:
        config["provider_options"] = get_provider(provider).check_options(options)
    return DataSource("src_x", "default", "webhook", "x", config, secret={"signing_secret": secret})


def test_every_built_in_provider_is_registered_by_name() -> None:
    assert webhook_providers.names() == [
        "cairn",
        "github",
        "hmac",
        "linear",
        "slack",
        "standard",
        "stripe",
    ]
    with pytest.raises(UnknownWebhookProvider, match=r"'gitlab'; known: cairn, github, hmac"):
        get_provider("gitlab")


def test_a_plugin_provider_is_used_through_the_same_registry() -> None:
    class Echo(WebhookProvider):
        name = "echo"
        title = "Echo"
        signature_header = "X-Echo-Key"

        def verify(self, incoming: Incoming, secrets: object, options: object) -> int:
            if incoming.header("X-Echo-Key") != "let-me-in":
                raise self.bad_signature(incoming)
            return 0

        def parse(self, incoming: Incoming, options: object) -> Delivery:
            return Delivery(
                "echo.said", {"raw": incoming.body.decode()}, None, self.facts(incoming)
            )

    webhook_providers.register("echo", Echo())
    try:
        got = read_delivery(source("echo", "unused-secret"), {"x-echo-key": "let-me-in"}, b"hi")
        assert (got.event_type, got.payload, got.facts.provider) == (
            "echo.said",
            {"raw": "hi"},
            "echo",
        )
        with pytest.raises(DeliveryRejected, match="X-Echo-Key does not match"):
            read_delivery(source("echo", "unused-secret"), {}, b"hi")
    finally:
        webhook_providers.unregister("echo")


def test_github_form_encoded_deliveries_are_read_like_json() -> None:
    secret = secrets.token_hex(20)
    payload = fixture("github", "issues.opened")
    body = urlencode({"payload": json.dumps(payload)}).encode()
    signed = GitHub("issues").sign(secret, payload, delivery_id="d-form")
    headers = signed.headers | {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Hub-Signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }
    got = read_delivery(source("github", secret), headers, body)
    assert got.event_type == "issues.opened"
    assert got.payload["issue"]["number"] == 1


def test_github_without_event_header_is_malformed_and_without_signature_unsigned() -> None:
    secret = secrets.token_hex(20)
    signed = GitHub("issues").sign(secret, fixture("github", "push"), delivery_id="d-1")
    no_event = {k: v for k, v in signed.headers.items() if k != "X-GitHub-Event"}
    with pytest.raises(DeliveryRejected) as refused:
        read_delivery(source("github", secret), no_event, signed.body)
    assert refused.value.http_status == 400 and refused.value.facts is not None
    assert refused.value.facts.refusal == "malformed"
    unsigned = {k: v for k, v in signed.headers.items() if k != "X-Hub-Signature-256"}
    with pytest.raises(DeliveryRejected, match="missing X-Hub-Signature-256") as refused:
        read_delivery(source("github", secret), unsigned, signed.body)
    assert refused.value.facts is not None and refused.value.facts.refusal == "unsigned"


def test_svix_prefixed_headers_verify_as_standard_webhooks() -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    signed = Standard().sign(secret, fixture("standard", "invoice.paid"), delivery_id="msg_1")
    svix = {k.replace("webhook-", "svix-"): v for k, v in signed.headers.items()}
    got = read_delivery(source("standard", secret), svix, signed.body)
    assert (got.event_type, got.sender_event_id) == ("invoice.paid", "msg_1")
    assert got.facts.headers["svix-id"] == "msg_1"


def test_linear_without_webhook_timestamp_is_refused() -> None:
    secret = "lin_wh_" + secrets.token_hex(16)
    body = json.dumps(fixture("linear", "Issue.create") | {"webhookTimestamp": None}).encode()
    headers = Linear().sign(secret, fixture("linear", "Issue.create"), delivery_id="l-1").headers
    headers["Linear-Signature"] = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    with pytest.raises(DeliveryRejected, match="no webhookTimestamp"):
        read_delivery(source("linear", secret), headers, body)


def test_generic_hmac_reads_sha1_hex_with_a_prefix_and_json_paths() -> None:
    secret = secrets.token_hex(16)
    body = json.dumps(fixture("hmac", "ticket_created")).encode()
    digest = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    hook = source(
        "hmac",
        secret,
        header="X-Hook-Sig",
        algorithm="sha1",
        prefix="sha1=",
        type_path="event.type",
        id_path="event.id",
    )
    got = read_delivery(hook, {"X-Hook-Sig": digest}, body)
    assert (got.event_type, got.sender_event_id) == ("ticket.created", "01HQ7Y2J9B6W1Z3X4V5N6M7K8P")
    assert got.facts.type_from == "body.event.type"
    with pytest.raises(DeliveryRejected, match="bad signature"):
        read_delivery(hook, {"X-Hook-Sig": digest.replace("sha1=", "sha256=")}, body)


def test_generic_hmac_options_are_checked() -> None:
    hmac_provider = get_provider("hmac")
    with pytest.raises(UsageError, match="unknown hmac option"):
        hmac_provider.check_options({"type_path": "t", "colour": "red"})
    with pytest.raises(UsageError, match="use sha256 or sha1"):
        hmac_provider.check_options({"type_path": "t", "algorithm": "md5"})
    with pytest.raises(UsageError, match="takes no options"):
        get_provider("github").check_options({"header": "X"})


def test_facts_keep_the_headers_that_matter_and_never_a_signature() -> None:
    secret = secrets.token_hex(20)
    signed = GitHub("issues").sign(secret, fixture("github", "issues.opened"), delivery_id="d-9")
    got = read_delivery(source("github", secret), signed.headers, signed.body)
    assert set(got.facts.headers) == {
        "X-GitHub-Event",
        "X-GitHub-Delivery",
        "X-GitHub-Hook-ID",
        "User-Agent",
    }
    assert secret not in json.dumps(got.facts.to_dict())
    assert "sha256=" not in json.dumps(got.facts.to_dict())


def test_a_previous_secret_past_its_window_no_longer_verifies() -> None:
    old, new = secrets.token_hex(20), secrets.token_hex(20)
    hook = source("github", new)
    hook.secret["previous_signing_secret"] = old
    hook.config["previous_secret_until"] = "2026-01-01T00:00:00+00:00"
    signed = GitHub("push").sign(old, fixture("github", "push"), delivery_id="d-old")
    before = datetime(2025, 12, 31, tzinfo=UTC).timestamp()
    got = read_delivery(hook, signed.headers, signed.body, now=before)
    assert got.facts.secret_used == "previous"
    with pytest.raises(DeliveryRejected, match="bad signature"):
        read_delivery(hook, signed.headers, signed.body, now=time.time())
