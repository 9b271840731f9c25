"""The recipes in docs/webhooks.md are checked against the documented payloads: each
section's trigger example names a type its provider derives from a real delivery, and its
filter matches that delivery's payload, so a copied recipe fires."""

from __future__ import annotations

import json
import re
import secrets
import shlex
from pathlib import Path

import pytest

from cairn.domain.sources import DataSource
from cairn.domain.triggers import filter_mismatch
from cairn.webhooks import read_delivery
from cairn.webhooks.registry import get_provider
from tests.webhooks.helpers import provider_secret
from tests.webhooks.senders import (
    GenericHmac,
    GitHub,
    Linear,
    Sender,
    Slack,
    Standard,
    Stripe,
    fixture,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"

SECTIONS: dict[str, tuple[str, Sender]] = {
    "GitHub": ("issues.opened", GitHub("issues")),
    "Stripe": ("invoice.paid", Stripe()),
    "Slack": ("app_mention", Slack()),
    "Linear": ("Issue.create", Linear()),
    "Standard Webhooks": ("email.delivered", Standard()),
    "Generic HMAC": ("orders_create", GenericHmac("orders/create")),
}


def _commands(section: str) -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                commands.append(shlex.split(line, comments=True))
    inline = re.findall(r"(?<!`)`(cairn source webhook add [^`]+)`", body)
    return [shlex.split(command) for command in inline] + commands


def _option(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


@pytest.mark.parametrize("section", list(SECTIONS))
def test_each_recipes_trigger_fires_on_the_documented_payload(section: str) -> None:
    name, sender = SECTIONS[section]
    commands = _commands(section)
    (trigger,) = [c for c in commands if c[:4] == ["cairn", "agent", "trigger", "create"]]
    adds = [c for c in commands if c[:4] == ["cairn", "source", "webhook", "add"]]
    provider = _option(adds[0], "--provider") if adds else None
    assert provider == sender.provider, f"{section}: the recipe adds a {provider} source"
    assert _option(trigger, "--source") == adds[0][4]
    options = {
        key.removeprefix("--").replace("-", "_"): value
        for key, value in zip(adds[0][5:], adds[0][6:], strict=False)
        if key.startswith("--") and key != "--provider"
    }
    secret = provider_secret(provider) or secrets.token_hex(20)
    config: dict[str, object] = {"provider": provider, "path": "/hooks/src_doc"}
    if options:
        config["provider_options"] = get_provider(provider).check_options(options)
    source = DataSource(
        "src_doc", "default", "webhook", "doc", config, secret={"signing_secret": secret}
    )
    signed = sender.sign(secret, fixture(provider, name), delivery_id="doc-1")
    delivery = read_delivery(source, signed.headers, signed.body)
    assert delivery.event_type == _option(trigger, "--event-type")
    wanted = json.loads(_option(trigger, "--filter") or "{}")
    assert wanted, f"{section}: the recipe shows a filter"
    assert filter_mismatch(wanted, delivery.payload) is None
