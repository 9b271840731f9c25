"""The Concierge: questions about Cairn in plain English, answered from the ledger.

``ask(app, sandbox_id, question)`` answers in one of two modes:

- **agent**: when the sandbox has a Concierge agent (the agent named by
  ``CAIRN_CONCIERGE_AGENT``, else one slugged ``concierge``) whose ``tool_sources`` name
  ``cairn``, the question is fired at it as a ``manual`` run whose tools are Cairn's own
  operations (``cairn.tools.cairn_ops``). The run executes in the asking task, holding the
  grant those tools act with (the App, the sandbox, the asker's role); it is in the ledger
  like any other, and the answer is its output, citing the run ids it names. A Concierge
  run that fails or says nothing is answered offline instead, saying so.
- **offline**: the deterministic interpreter of ``cairn.services.concierge.offline``,
  which reads the question (``cairn.services.concierge.questions``), calls the services
  and phrases what they return. Destructive questions are always answered offline, so
  "it prints the command instead" holds whatever model runs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cairn.domain.keys import Role
from cairn.errors import NotFound, UsageError
from cairn.services.app import App
from cairn.services.concierge.offline import Answer, answer_offline
from cairn.services.concierge.questions import (
    Question,
    cited_run_ids,
    commands_in,
    parse_question,
)
from cairn.services.concierge.source import ensure_cairn_source

if TYPE_CHECKING:
    from cairn.domain.agents import Agent
    from cairn.domain.runs import Run

__all__ = ["CONCIERGE_ENV", "Answer", "ask", "concierge_agent"]

CONCIERGE_ENV = "CAIRN_CONCIERGE_AGENT"
DEFAULT_CONCIERGE_SLUG = "concierge"


async def ask(
    app: App,
    sandbox_id: str,
    question: str,
    *,
    role: Role = "owner",
    offline: bool = False,
    confirmed: bool = False,
) -> Answer:
    """Answer ``question`` about sandbox ``sandbox_id`` (see the module docstring).

    ``role`` is the asker's: reversible changes (pausing a trigger) need an editor, as
    through the API. ``offline`` skips the Concierge agent. A test fire of an agent with
    tools that may act (anything but known read-only ones) is only described, with a
    request to confirm, unless ``confirmed`` (``cairn ask --yes``). Raises ``UsageError`` for an
    empty question or a misconfigured ``CAIRN_CONCIERGE_AGENT``; questions about things
    that do not exist are answered, not raised."""
    from cairn.services.agents import list_agents

    if not question.strip():
        raise UsageError('ask a question, e.g. cairn ask "Which agent used the most tokens today?"')
    agents = list_agents(app, sandbox_id)
    parsed = parse_question(question, [agent.slug for agent in agents])
    concierge = None if offline else concierge_agent(app, sandbox_id)
    if concierge is not None and parsed.intent != "destructive":
        return await _ask_agent(app, sandbox_id, concierge, parsed, role)
    return await answer_offline(app, sandbox_id, agents, parsed, role, confirmed)


def concierge_agent(app: App, sandbox_id: str) -> Agent | None:
    """The sandbox's Concierge agent when one is configured and active, else ``None``.

    ``CAIRN_CONCIERGE_AGENT`` names it explicitly (then a missing agent, or one without
    the ``cairn`` source, is a ``UsageError``); otherwise an agent slugged ``concierge``
    that names ``cairn`` in its tool sources is used if there is one."""
    from cairn.services.agents import get_agent
    from cairn.tools.cairn_ops import uses_cairn_tools

    configured = os.environ.get(CONCIERGE_ENV, "").strip()
    slug = configured or DEFAULT_CONCIERGE_SLUG
    try:
        agent = get_agent(app, sandbox_id, slug)
    except NotFound:
        if configured:
            raise UsageError(
                f"{CONCIERGE_ENV} names agent {slug!r}, which sandbox {sandbox_id!r} does not "
                f"have: create it with --tool-sources '[\"cairn\"]' or unset {CONCIERGE_ENV}"
            ) from None
        return None
    if not uses_cairn_tools(agent.tool_sources):
        if configured:
            raise UsageError(
                f"{CONCIERGE_ENV} names agent {slug!r}, whose tool sources do not include "
                f"'cairn': cairn agent update {slug} --tool-sources '[\"cairn\"]'"
            )
        return None
    return agent if agent.status == "active" else None


# --- agent mode -----------------------------------------------------------------------


async def _ask_agent(
    app: App, sandbox_id: str, agent: Agent, parsed: Question, role: Role
) -> Answer:
    """Fire the Concierge agent with the question, in this task, holding the grant its
    ``cairn`` tools act with (see ``cairn.tools.cairn_ops``)."""
    from cairn.services.sources import available_sources
    from cairn.tools.cairn_ops import Grant, granted

    ensure_cairn_source(app, sandbox_id)
    run = app.runner.accept(agent, parsed.hints(), kind="manual")
    with granted(Grant(app, sandbox_id, role)):
        run = await app.runner.execute(run, agent, available_sources(app, sandbox_id))
    if run.status != "succeeded" or not run.output_text.strip():
        return await _fallback(app, sandbox_id, parsed, role, run)
    commands = commands_in(run.output_text)
    return Answer(
        text=run.output_text.strip(),
        run_ids=cited_run_ids(run.output_text, exclude=run.run_id),
        commands=[*commands, f"cairn runs show {run.run_id}"],
        mode="agent",
        concierge_run_id=run.run_id,
        intent="agent",
    )


async def _fallback(app: App, sandbox_id: str, parsed: Question, role: Role, run: Run) -> Answer:
    from cairn.services.agents import list_agents

    why = run.error_message or f"it ended {run.status} without an answer (outcome {run.outcome})"
    offline = await answer_offline(app, sandbox_id, list_agents(app, sandbox_id), parsed, role)
    note = (
        f"(The Concierge agent's run {run.run_id} did not answer: {why}. "
        "Answered by the offline interpreter instead.)"
    )
    return Answer(
        text=f"{note}\n\n{offline.text}",
        run_ids=offline.run_ids,
        commands=[*offline.commands, f"cairn runs explain {run.run_id}"],
        mode="offline",
        concierge_run_id=run.run_id,
        intent=offline.intent,
    )
