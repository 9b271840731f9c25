"""The hot paths' caches never serve what changed: sources, triggers and API keys, each
changed through a second ``App`` on the same ledger (another process, as far as the first
one's memory is concerned) as well as through the first."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from cairn.config import Settings
from cairn.errors import NotFound, Unauthorized
from cairn.services.access import authenticate, create_key, revoke_key
from cairn.services.agents import AgentChanges, AgentSpec, create_agent, update_agent
from cairn.services.app import App
from cairn.services.caches import KEY_TTL_S, KeyCache
from cairn.services.ingest import GroupCommit, IngestResult, ingest
from cairn.services.sources import available_sources, revoke_source
from cairn.services.triggers import create_trigger, update_trigger
from cairn.services.webhooks import DeliveryRejected, add_webhook_source, rotate_secret, sign
from cairn.store import runs as run_store
from cairn.store import sources as source_store
from cairn.store.engine import open_store
from cairn.store.schema import events as events_table
from cairn.webhooks import read_delivery

pytestmark = pytest.mark.anyio


@pytest.fixture
def other(settings: Settings) -> Iterator[App]:
    """A second application on the same ledger and key file: another process's view."""
    second = App(settings, open_store(settings.database_url))
    yield second
    second.close()


def deliver(app: App, source_id: str, secret: str | None, body: bytes = b'{"type": "t"}') -> None:
    """What the webhook route does: look the source up through the cache, verify."""
    assert secret is not None, "Cairn's own webhooks are created with a secret"
    entry = app.caches.source_entry(source_id, fresh=True)
    if entry is None or entry[0].status == "revoked":
        raise LookupError(source_id)
    source = entry[0]
    timestamp = "1700000000"
    headers = {"X-Cairn-Timestamp": timestamp, "X-Cairn-Signature": sign(secret, timestamp, body)}
    read_delivery(source, headers, body, now=1700000000)


def test_a_rotated_signing_secret_is_used_at_once_and_the_old_one_never_again(
    app: App, other: App
) -> None:
    hook = add_webhook_source(app, "default", "gh")
    source_id = hook.source.source_id
    deliver(app, source_id, hook.secret)  # cached now

    rotated = rotate_secret(other, "default", "gh", overlap=timedelta(0))

    with pytest.raises(DeliveryRejected, match="signature"):
        deliver(app, source_id, hook.secret)
    deliver(app, source_id, rotated.secret)


def test_a_revoked_source_is_seen_revoked_through_the_cache(app: App, other: App) -> None:
    hook = add_webhook_source(app, "default", "gh")
    deliver(app, hook.source.source_id, hook.secret)

    revoke_source(other, "default", "gh")

    with pytest.raises(LookupError):
        deliver(app, hook.source.source_id, hook.secret)
    cached = app.caches.source_entry(hook.source.source_id, fresh=True)
    assert cached is not None
    assert (cached[0].status, cached[0].secret) == ("revoked", {})


def test_a_changed_source_config_is_read_again(app: App, other: App) -> None:
    hook = add_webhook_source(app, "default", "gh")
    entry = app.caches.source_entry(hook.source.source_id, fresh=True)
    assert entry is not None
    before = entry[0]
    again = app.caches.source_entry(hook.source.source_id, fresh=True)
    assert again is not None and again[0] is before  # a hit

    with other.store.begin() as conn:
        source_store.set_source_config(
            conn, "default", hook.source.source_id, {**before.config, "note": "changed"}
        )

    after = app.caches.source_entry(hook.source.source_id, fresh=True)
    assert after is not None and after[0].config["note"] == "changed"
    assert app.caches.source_entry("src_missing", fresh=True) is None


async def test_triggers_created_or_paused_elsewhere_decide_the_next_event(
    app: App, other: App
) -> None:
    hook = add_webhook_source(app, "default", "gh")
    await create_agent(
        app,
        "default",
        AgentSpec(slug="triage", system_prompt="t", tool_sources=[]),
    )
    first = await ingest(app, hook.source, "issue.opened", {"n": 1})
    assert first.decisions == []

    trigger = create_trigger(other, "default", "triage", "gh", event_type_filter="nothing.here")
    second = await ingest(app, hook.source, "issue.opened", {"n": 2})
    update_trigger(other, "default", trigger.trigger_id, status="paused")
    third = await ingest(app, hook.source, "issue.opened", {"n": 3})

    assert [d.decision for d in second.decisions] == ["filtered_out"]
    assert [d.decision for d in third.decisions] == ["paused"]


def test_a_key_revoked_here_is_refused_at_once(app: App) -> None:
    key, token = create_key(app, "default", "ci", "editor")
    assert authenticate(app, token).key_id == key.key_id  # cached now

    revoke_key(app, "default", key.key_id)

    with pytest.raises(Unauthorized, match="revoked"):
        authenticate(app, token)


def test_a_key_revoked_elsewhere_is_refused_within_one_second(app: App, other: App) -> None:
    now = [1000.0]
    app.caches.keys = KeyCache(clock=lambda: now[0])
    key, token = create_key(app, "default", "ci", "editor")
    authenticate(app, token)

    revoke_key(other, "default", key.key_id)

    now[0] += KEY_TTL_S * 0.5
    assert authenticate(app, token).key_id == key.key_id  # still inside the trusted second
    now[0] += KEY_TTL_S * 0.5
    with pytest.raises(Unauthorized, match="revoked"):
        authenticate(app, token)
    assert KEY_TTL_S <= 1.0


def test_a_wrong_secret_for_a_cached_key_id_is_refused(app: App) -> None:
    key, token = create_key(app, "default", "ci", "viewer")
    authenticate(app, token)

    with pytest.raises(Unauthorized):
        authenticate(app, f"{key.key_id}.not-the-secret")


@pytest.fixture
def serving(app: App) -> Iterator[App]:
    """``app`` with the execution backend a server opens (the group commit queues for it)."""
    from cairn.execution import open_executor

    app.executor = open_executor(app)
    yield app


async def test_the_group_commit_stores_nothing_verified_with_a_source_changed_since(
    serving: App, other: App
) -> None:
    hook = add_webhook_source(serving, "default", "gh")
    entry = serving.caches.source_entry(hook.source.source_id)
    assert entry is not None
    writer = GroupCommit(serving)

    rotate_secret(other, "default", "gh", overlap=timedelta(0))  # after the verification
    stale = await writer.ingest(*entry, "t", {"n": 1}, "one", None, None)
    revoke_source(other, "default", "gh")
    cached = serving.caches.source_entry(hook.source.source_id)
    assert cached is not None and cached[1] == entry[1], "the cache alone has not seen it"
    revoked = await writer.ingest(*cached, "t", {"n": 2}, "two", None, None)

    assert (stale, revoked) == (None, None), "sent back to be verified again"
    assert _stored(serving) == []
    fresh = serving.caches.source_entry(hook.source.source_id, fresh=True)
    assert fresh is not None and fresh[0].status == "revoked"


async def test_one_group_commit_stores_each_event_once_and_answers_each(
    serving: App,
) -> None:
    hook = add_webhook_source(serving, "default", "gh")
    await create_agent(serving, "default", AgentSpec(slug="triage", system_prompt="t"))
    create_trigger(serving, "default", "triage", "gh", event_type_filter="issue.opened")
    entry = serving.caches.source_entry(hook.source.source_id)
    assert entry is not None
    writer = GroupCommit(serving)
    senders = ["a", "b", "a", None, "c", "b"]  # two repeated within the batch

    results = await asyncio.gather(
        *(
            writer.ingest(*entry, "issue.opened", {"n": n}, s, None, None)
            for n, s in enumerate(senders)
        )
    )

    assert all(r is not None for r in results)
    done = [r for r in results if r is not None]
    assert [r.duplicate for r in done] == [False, False, True, False, False, True]
    assert done[2].event_id == done[0].event_id and done[5].event_id == done[1].event_id
    assert [[d.decision for d in r.decisions] for r in done if not r.duplicate] == [["fired"]] * 4
    assert sorted(s or "" for s in _stored(serving)) == ["", "a", "b", "c"]
    with serving.store.connect() as conn:
        queued = run_store.count_queued(conn)
    assert queued == 4, "every fired run queued with its event"


async def test_an_event_that_cannot_be_stored_fails_alone_in_its_group_commit(
    serving: App,
) -> None:
    hook = add_webhook_source(serving, "default", "gh")
    entry = serving.caches.source_entry(hook.source.source_id)
    assert entry is not None
    writer = GroupCommit(serving)
    unstorable = {"not json": object()}  # fails the batch's one INSERT

    results = await asyncio.gather(
        writer.ingest(*entry, "t", {"n": 1}, "one", None, None),
        writer.ingest(*entry, "t", unstorable, "two", None, None),
        writer.ingest(*entry, "t", {"n": 3}, "three", None, None),
        return_exceptions=True,
    )

    assert isinstance(results[1], Exception)
    assert all(isinstance(r, IngestResult) for r in (results[0], results[2])), results
    assert sorted(s or "" for s in _stored(serving)) == ["one", "three"]


def _stored(app: App) -> list[str | None]:
    with app.store.connect() as conn:
        return [row.sender_event_id for row in conn.execute(select(events_table))]


async def test_a_worker_reads_the_agent_as_stored_now_changed_or_gone(app: App, other: App) -> None:
    agent, _ = await create_agent(
        app, "default", AgentSpec(slug="triage", system_prompt="first", tool_sources=[])
    )
    with app.store.connect() as conn:
        assert app.caches.agent(conn, "default", agent.agent_id).system_prompt == "first"
        hit = app.caches.agent(conn, "default", agent.agent_id)
        assert app.caches.agent(conn, "default", agent.agent_id) is hit

    await update_agent(other, "default", "triage", AgentChanges(system_prompt="second"))
    with app.store.connect() as conn:
        changed = app.caches.agent(conn, "default", agent.agent_id)
    assert (changed.system_prompt, changed.version) == ("second", agent.version + 1)

    with app.store.connect() as conn, pytest.raises(NotFound):
        app.caches.agent(conn, "other-sandbox", agent.agent_id)


def test_a_sandboxs_sources_are_read_again_when_any_changed(app: App, other: App) -> None:
    hook = add_webhook_source(app, "default", "gh")
    first = {s.label: s for s in available_sources(app, "default")}
    first["gh"].config["mutated"] = True  # a run's copy: never seen by the next one
    assert "mutated" not in {s.label: s for s in available_sources(app, "default")}["gh"].config

    add_webhook_source(other, "default", "second")
    rotated = rotate_secret(other, "default", "gh", overlap=timedelta(0))
    seen = {s.label: s for s in available_sources(app, "default")}
    assert "second" in seen
    assert seen["gh"].secret != first["gh"].secret
    assert rotated.secret is not None

    revoke_source(other, "default", "gh")
    assert {s.label: s.status for s in available_sources(app, "default")}["gh"] == "revoked"
    assert hook.source.source_id in {s.source_id for s in available_sources(app, "default")}
