"""Setting up a provider source with triggers on the test server, and posting to it."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.triggers.conftest import Server
from tests.webhooks.senders import Signed

SCRIPT = {"turns": [{"text": "Seen."}]}


def provider_secret(provider: str) -> str | None:
    """A secret in the provider's own format where it issues one; ``None`` where Cairn
    generates it."""
    if provider in ("stripe",):
        return "whsec_" + secrets.token_hex(24)
    if provider == "standard":
        return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    if provider == "slack":
        return secrets.token_hex(16)
    if provider == "linear":
        return "lin_wh_" + secrets.token_urlsafe(24)
    return None


@dataclass
class Hook:
    """A provider source on the server: where to post, its secret, a trigger per type."""

    server: Server
    label: str
    url: str
    secret: str
    triggers: dict[str, str]

    def post(self, signed: Signed) -> httpx.Response:
        return httpx.post(self.url, content=signed.body, headers=signed.headers, timeout=30)

    def events(self) -> list[dict[str, Any]]:
        with self.server.api() as api:
            page = api.get("/events", params={"source": self.label, "limit": 100})
        assert page.status_code == 200, page.text
        found: list[dict[str, Any]] = page.json()["events"]
        return found

    def runs(self, count: int) -> list[dict[str, Any]]:
        """The agent's runs once ``count`` of them are final (bounded wait)."""
        deadline = time.monotonic() + 30
        with self.server.api() as api:
            while True:
                runs: list[dict[str, Any]] = api.get(
                    "/agents/watcher/runs", params={"limit": 100}
                ).json()["runs"]
                final = [r for r in runs if r["status"] in ("succeeded", "failed", "cancelled")]
                if len(final) >= count or time.monotonic() > deadline:
                    return runs
                time.sleep(0.05)


def make_hook(
    server: Server,
    provider: str,
    event_types: list[str],
    *,
    options: dict[str, Any] | None = None,
    filters: dict[str, dict[str, Any]] | None = None,
) -> Hook:
    """An agent ``watcher``, a ``provider`` source and one trigger per event type."""
    label = f"{provider}-hook"
    with server.api() as api:
        made = api.post(
            "/agents",
            json={
                "slug": "watcher",
                "system_prompt": "Watch.",
                "tool_sources": [],
                "model_settings": {"script": SCRIPT},
            },
        )
        assert made.status_code == 201, made.text
        pasted = provider_secret(provider)
        body: dict[str, Any] = {"label": label, "provider": provider, "signing_secret": pasted}
        if options:
            body["options"] = options
        hook = api.post("/sources/webhooks", json=body)
        assert hook.status_code == 201, hook.text
        created = hook.json()
        assert created["provider"] == provider
        assert created["source"]["config"]["provider"] == provider
        triggers = {}
        for event_type in event_types:
            trigger: dict[str, Any] = {"data_source_id": label, "event_type_filter": event_type}
            if filters and event_type in filters:
                trigger["filter_config"] = filters[event_type]
            answer = api.post("/agents/watcher/triggers", json=trigger)
            assert answer.status_code == 201, answer.text
            triggers[event_type] = answer.json()["trigger_id"]
    secret = created["signing_secret"]
    assert secret == (pasted or secret) and secret
    return Hook(server, label, server.url + created["path"], secret, triggers)
