"""Agent rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from cairn.domain.agents import Agent, ModelSettings
from cairn.errors import AlreadyExists, NotFound
from cairn.store.rows import record_values, row_record
from cairn.store.schema import agents


def _to_agent(row: Row[Any]) -> Agent:
    settings = ModelSettings.from_dict(row.model_settings or {})
    allowlist = list(row.tool_allowlist or [])
    return row_record(Agent, row, tool_allowlist=allowlist, model_settings=settings)


def _values(agent: Agent) -> dict[str, Any]:
    return record_values(agents, agent, model_settings=agent.model_settings.to_dict())


def create_agent(conn: Connection, agent: Agent) -> Agent:
    """Insert ``agent``; a taken slug raises ``AlreadyExists``."""
    try:
        with conn.begin_nested():
            conn.execute(insert(agents).values(**_values(agent)))
    except IntegrityError:
        raise AlreadyExists(
            f"an agent with slug {agent.slug!r} already exists in sandbox {agent.sandbox_id!r}; "
            "choose another slug or update it with 'cairn agent update'"
        ) from None
    return agent


def get_agent(conn: Connection, sandbox_id: str, slug: str) -> Agent:
    """The agent ``slug`` of the sandbox, or ``NotFound``."""
    row = conn.execute(
        select(agents).where(agents.c.sandbox_id == sandbox_id, agents.c.slug == slug)
    ).first()
    if row is None:
        raise NotFound(f"no agent {slug!r} in sandbox {sandbox_id!r} (see 'cairn agent list')")
    return _to_agent(row)


_BY_ID = select(agents).where(
    agents.c.sandbox_id == bindparam("in_sandbox"), agents.c.agent_id == bindparam("wanted_id")
)
"""Built once: every fired event reads its agent by id."""


def get_agent_by_id(conn: Connection, sandbox_id: str, agent_id: str) -> Agent:
    """The agent with ``agent_id`` in the sandbox, or ``NotFound``."""
    row = conn.execute(_BY_ID, {"in_sandbox": sandbox_id, "wanted_id": agent_id}).first()
    if row is None:
        raise NotFound(f"no agent with id {agent_id!r} in sandbox {sandbox_id!r}")
    return _to_agent(row)


def list_agents(conn: Connection, sandbox_id: str, *, include_archived: bool = True) -> list[Agent]:
    """Every agent of the sandbox, by slug."""
    query = select(agents).where(agents.c.sandbox_id == sandbox_id).order_by(agents.c.slug)
    if not include_archived:
        query = query.where(agents.c.status == "active")
    return [_to_agent(row) for row in conn.execute(query)]


def save_agent(conn: Connection, agent: Agent) -> Agent:
    """Write every mutable field of ``agent`` back (the caller computed the new version)."""
    values = _values(agent)
    values["updated_at"] = datetime.now(UTC)
    for key in ("agent_id", "sandbox_id", "created_at"):
        values.pop(key)
    conn.execute(
        update(agents)
        .where(agents.c.sandbox_id == agent.sandbox_id, agents.c.agent_id == agent.agent_id)
        .values(**values)
    )
    return get_agent_by_id(conn, agent.sandbox_id, agent.agent_id)
