"""The offline Concierge against a corpus of on-call questions, phrased the way a busy
person types them, on a sandbox built for the purpose: a typo'd allowlist (billing), a
dead MCP source (digest), a tool-less agent by choice (chatter), a trigger whose filter
never matches (sync), a paused trigger (notify), a cost runaway (chatty), a model that
errors (extractor), a tool that errors on every call (fetcher) and a healthy agent
(support).

Each entry names the intent expected and the key facts the answer must hold: the run,
event or trigger ids, fields and findings it rests on. The test passes at 95 % or more and
prints the rate and every miss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from cairn.domain.agents import ModelSettings
from cairn.services.agents import AgentSpec, create_agent
from cairn.services.app import App
from cairn.services.concierge import ask
from cairn.services.ingest import ingest
from cairn.services.runs import fire_agent
from cairn.services.sources import McpSourceSpec, add_mcp_source
from cairn.services.triggers import create_trigger, update_trigger
from cairn.services.usage import set_threshold
from cairn.services.webhooks import add_webhook_source
from tests.mcp_servers import serve_http

pytestmark = pytest.mark.anyio

SANDBOX = "default"
PASS_RATE = 0.95

ACTS = [{"tool_calls": [{"name": "clock_now", "arguments": {}}]}, "Done at {{results.0}}."]
CHATS = ["Hello, I only talk."]
FAILS = [{"error": "upstream exploded"}]
FETCHES = [
    {"tool_calls": [{"name": "http_request", "arguments": {"url": "https://api.example.com/"}}]},
    "It did not work.",
]
BIG = {"turns": [{"text": "Chatting away.", "usage": {"tokens_in": 4000, "tokens_out": 1000}}]}


@dataclass(frozen=True)
class Case:
    question: str
    intent: str
    facts: tuple[str, ...]  # formatted with the ids of the setup


async def _agent(
    app: App,
    slug: str,
    script: Any,
    tool_sources: list[str] | None,
    allowlist: list[str] | None = None,
) -> None:
    await create_agent(
        app,
        SANDBOX,
        AgentSpec(
            slug=slug,
            system_prompt=f"You are the {slug} agent.",
            tool_sources=tool_sources,
            tool_allowlist=allowlist or [],
            model_settings=ModelSettings(script=script),
        ),
    )


async def _fire(app: App, slug: str, count: int = 1) -> list[str]:
    return [(await fire_agent(app, SANDBOX, slug, {"n": n})).run_id for n in range(count)]


async def build(app: App) -> dict[str, str]:
    """The sandbox; returns the ids the expected facts name."""
    ids: dict[str, str] = {}
    await _agent(app, "support", ACTS, ["builtin"], ["clock_now"])
    await _agent(app, "billing", ACTS, ["builtin"], ["clock_nwo"])
    with serve_http("s3cret") as server:
        await add_mcp_source(
            app,
            SANDBOX,
            McpSourceSpec("crm", "http", url=server.url, auth="bearer", token="s3cret"),
        )
    await _agent(app, "digest", ACTS, ["crm"])  # crm is stopped now: skipped
    await _agent(app, "chatter", CHATS, [])
    await _agent(app, "sync", CHATS, [])
    await _agent(app, "notify", CHATS, [])
    await _agent(app, "chatty", BIG, [])
    await _agent(app, "extractor", FAILS, [])
    await _agent(app, "fetcher", FETCHES, ["builtin"])
    ids["support_run"] = (await _fire(app, "support", 3))[-1]
    ids["billing_run"] = (await _fire(app, "billing", 2))[-1]
    ids["digest_run"] = (await _fire(app, "digest"))[-1]
    ids["chatter_run"] = (await _fire(app, "chatter", 2))[-1]
    ids["extractor_run"] = (await _fire(app, "extractor", 2))[-1]
    ids["fetcher_run"] = (await _fire(app, "fetcher", 3))[-1]
    ids["chatty_run"] = (await _fire(app, "chatty", 3))[-1]
    set_threshold(app, SANDBOX, "chatty", tokens_per_hour=10_000, pause_triggers=True)
    github = add_webhook_source(app, SANDBOX, "github").source
    alerts = add_webhook_source(app, SANDBOX, "alerts").source
    chat = add_webhook_source(app, SANDBOX, "chat").source
    sync = create_trigger(app, SANDBOX, "sync", "github", filter_config={"action": "opened"})
    notify = create_trigger(app, SANDBOX, "notify", "alerts")
    chatty = create_trigger(app, SANDBOX, "chatty", "chat")
    update_trigger(app, SANDBOX, notify.trigger_id, status="paused")
    ids |= {"sync_trg": sync.trigger_id, "notify_trg": notify.trigger_id}
    ids["chatty_trg"] = chatty.trigger_id
    for action in ("closed", "edited", "closed"):
        ids["sync_evt"] = (await ingest(app, github, "issues", {"action": action})).event_id
    for level in ("warn", "crit"):
        ids["notify_evt"] = (await ingest(app, alerts, "alert", {"level": level})).event_id
    _ = chat
    return ids


CORPUS: tuple[Case, ...] = (
    # An agent named, status unclear or asked in people's words.
    Case(
        "why is billing doing nothing?",
        "agent_status",
        ("clock_nwo", "clock_now", "{billing_run}"),
    ),
    Case("is digest ok?", "agent_status", ("crm", "is down or cannot start")),
    Case(
        "why did the extractor agent fail?",
        "agent_status",
        ("{extractor_run}", "upstream exploded"),
    ),
    Case("is billng healthy?", "agent_status", ("I took 'billng'", "clock_nwo")),
    Case("what's up with digest", "agent_status", ("crm",)),
    Case("is support ok?", "agent_status", ("looks healthy", "{support_run}")),
    Case("how's chatter doing?", "agent_status", ("tool-less by choice", "{chatter_run}")),
    Case("billing not working", "agent_status", ("clock_nwo",)),
    Case("billing broken?", "agent_status", ("clock_nwo", "{billing_run}")),
    Case(
        "is the fetcher agent failing?",
        "agent_status",
        ("CAIRN_HTTP_ALLOWED_HOSTS", "{fetcher_run}"),
    ),
    Case("extractor keeps failing, why", "agent_status", ("upstream exploded",)),
    Case("anything wrong with chatty?", "agent_status", ("over its threshold", "{chatty_run}")),
    Case("status of notify", "agent_status", ("{notify_trg}", "paused")),
    Case("digest?", "agent_status", ("crm",)),
    Case("tell me about sync", "agent_status", ("'action'", "{sync_evt}")),
    Case("support health", "agent_status", ("{support_run}",)),
    Case("is extractor healthy", "agent_status", ("{extractor_run}", "model_error")),
    Case("what is going on with billing", "agent_status", ("clock_nwo",)),
    Case("fetcher is broken", "agent_status", ("api.example.com",)),
    Case("chatter", "agent_status", ("tool-less by choice",)),
    Case("whats wrong with digset", "agent_status", ("I took 'digset'", "crm")),
    Case("why is notify doing nothing?", "agent_status", ("{notify_trg}", "paused")),
    Case("why is fetcher erroring?", "agent_status", ("host_not_allowed", "{fetcher_run}")),
    Case("does billing work?", "agent_status", ("clock_nwo",)),
    Case("how is extractor", "agent_status", ("upstream exploded",)),
    # Never fires / runs.
    Case("sync never runs, why?", "why_not_fired", ("'action'", "opened", "closed")),
    Case("why didn't sync fire?", "why_not_fired", ("filter_config", "{sync_evt}")),
    Case("why doesn't sync trigger on github events?", "why_not_fired", ("'action'",)),
    Case("sync hasn't run at all", "why_not_fired", ("{sync_evt}",)),
    Case("why won't notify fire?", "why_not_fired", ("paused", "cairn agent trigger resume")),
    Case("notify never fires", "why_not_fired", ("{notify_trg}",)),
    Case("why didn't chatty react to the last event?", "why_not_fired", ("chat",)),
    Case("why did sync not run on the last event", "why_not_fired", ('"opened"',)),
    Case("the sync agent isn't firing", "why_not_fired", ("filter",)),
    Case("trigger {notify_trg} never goes off", "why_not_fired", ("paused",)),
    # Did anything break?
    Case(
        "did anything break in the last hour?",
        "problems",
        ("{extractor_run}", "{fetcher_run}", "filtered out", "paused", "chatty"),
    ),
    Case("what's wrong?", "problems", ("{extractor_run}", "{sync_trg}")),
    Case("anything broken today?", "problems", ("{extractor_run}",)),
    Case("any problems in the last 24 hours?", "problems", ("{billing_run}", "{digest_run}")),
    Case("what failed today?", "problems", ("model_error", "{extractor_run}")),
    Case("did something go wrong since 9am?", "problems", ("{extractor_run}",)),
    Case("any errors in the past 2 hours?", "problems", ("{fetcher_run}",)),
    Case("what broke?", "problems", ("{notify_trg}",)),
    Case("were there failures this week?", "problems", ("{extractor_run}",)),
    Case("is anything on fire?", "problems", ("over its threshold",)),
    Case("any issues since yesterday?", "problems", ("{extractor_run}",)),
    Case("what went wrong in the last 3h", "problems", ("{fetcher_run}",)),
    # The sandbox's health.
    Case("what needs fixing?", "doctor", ("clock_nwo", "crm")),
    Case("is everything ok?", "doctor", ("clock_nwo",)),
    Case("run a health check", "doctor", ("crm",)),
    Case("doctor", "doctor", ("stale", "clock_nwo")),
    Case("what needs attention?", "doctor", ("crm",)),
    Case("are all agents healthy?", "doctor", ("clock_nwo",)),
    # Runs.
    Case("show me failed runs from yesterday", "list_runs", ("No failed runs", "yesterday (")),
    Case("show me the last 5 runs of support", "list_runs", ("{support_run}", "acted")),
    Case("list failed runs", "list_runs", ("{extractor_run}", "upstream exploded")),
    Case("runs of billing today", "list_runs", ("{billing_run}", "since midnight")),
    Case("show billing's runs", "list_runs", ("{billing_run}",)),
    Case("last 3 runs", "list_runs", ("{chatty_run}",)),
    Case("show runs since 9am", "list_runs", ("{chatty_run}", "since ")),
    Case("which runs failed in the last 2 hours", "list_runs", ("{extractor_run}",)),
    Case("show me 10 runs for chatter", "list_runs", ("{chatter_run}",)),
    Case("list the failed runs of extractor today", "list_runs", ("{extractor_run}",)),
    # A run or an event explained.
    Case(
        "why didn't run {billing_run} use any tools?",
        "explain_run",
        ("clock_nwo", "allowlist_missing_entries"),
    ),
    Case("explain {extractor_run}", "explain_run", ("upstream exploded", "error_type")),
    Case("what happened in {fetcher_run}?", "explain_run", ("CAIRN_HTTP_ALLOWED_HOSTS",)),
    Case("why did support's last run succeed", "explain_run", ("{support_run}", "clock_now")),
    Case("explain the latest run of digest", "explain_run", ("crm",)),
    Case("{billing_run}", "explain_run", ("clock_nwo",)),
    Case("why didn't event {sync_evt} fire anything?", "explain_event", ("'action'", "{sync_trg}")),
    Case("explain {notify_evt}", "explain_event", ("paused",)),
    # Tools.
    Case("what tools does billing have?", "agent_tools", ("clock_nwo", "clock_now")),
    Case("which tools can support use right now?", "agent_tools", ("clock_now",)),
    Case("digest tools", "agent_tools", ("crm",)),
    Case("what's on fetcher's allowlist", "agent_tools", ("http_request",)),
    # Money.
    Case("which agent used the most tokens today?", "usage", ("chatty", "15,000")),
    Case("who is burning money?", "usage", ("chatty",)),
    Case("is chatty burning money?", "usage", ("chatty", "15,000")),
    Case("token usage by model this week", "usage", ("scripted",)),
    Case("how much did we spend in the last 24 hours?", "usage", ("Total",)),
    Case("hourly cost of chatty", "usage", ("chatty",)),
    Case("what's the most expensive agent?", "usage", ("chatty",)),
    # Test fires.
    Case('test support with {{"ticket": 9}}', "test_fire", ("Test-fired support", "clock_now")),
    Case('try the chatter agent with {{"hi": 1}}', "test_fire", ("Test-fired chatter",)),
    # Destroying: never done, the command given.
    Case("delete the sync trigger", "destructive", ("cairn agent trigger destroy {sync_trg}",)),
    Case("wipe all runs", "destructive", ("cairn runs prune",)),
    # Stop and resume (last: they change the sandbox).
    Case(
        "chatty is burning money, stop it",
        "pause_trigger",
        ("{chatty_trg}", "cairn agent trigger resume {chatty_trg}"),
    ),
    Case("resume chatty", "resume_trigger", ("{chatty_trg}",)),
    Case("pause sync", "pause_trigger", ("{sync_trg}",)),
    Case("turn sync back on", "resume_trigger", ("{sync_trg}",)),
    Case("stop the billing agent", "pause_trigger", ("billing has no trigger",)),
    Case("kill notify", "pause_trigger", ("{notify_trg}", "already paused")),
)  # fmt: skip


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CORPUS) >= 80
    assert len({case.intent for case in CORPUS}) >= 12
    assert all(case.facts for case in CORPUS)  # every answer must cite something


async def test_the_offline_concierge_answers_on_call_questions(app: App) -> None:
    ids = await build(app)
    misses: list[str] = []
    for case in CORPUS:
        question = case.question.format(**ids)
        answer = await ask(app, SANDBOX, question, offline=True)
        facts = [fact.format(**ids) for fact in case.facts]
        missing = [fact for fact in facts if fact not in answer.text]
        if answer.intent != case.intent or missing:
            misses.append(
                f"{question!r}: intent {answer.intent} (want {case.intent}), missing {missing}"
                f"\n    {answer.text[:400]!r}"
            )
        assert "I did not understand" not in answer.text or case.intent == "help", question
    rate = 1 - len(misses) / len(CORPUS)
    print(f"\nConcierge corpus: {len(CORPUS) - len(misses)}/{len(CORPUS)} = {rate:.1%}")
    for miss in misses:
        print("MISS", miss)
    assert rate >= PASS_RATE, "\n".join(misses)
