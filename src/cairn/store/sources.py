"""Tool-source rows. Secrets are sealed by ``SecretBox`` before they reach the table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from cairn.domain.sources import DataSource, validate_label
from cairn.errors import AlreadyExists, NotFound
from cairn.store.crypto import SecretBox
from cairn.store.rows import record_values, row_record
from cairn.store.schema import sources


def _to_source(row: Row[Any], box: SecretBox | None) -> DataSource:
    secret = box.open(row.secret_ciphertext) if box else {}
    return row_record(DataSource, row, config=dict(row.config or {}), secret=secret)


def create_source(conn: Connection, source: DataSource, box: SecretBox) -> DataSource:
    """Insert ``source``; a label already used in the sandbox raises ``AlreadyExists``, an
    unusable one ``UsageError`` (``validate_label``: every kind of source goes through here)."""
    validate_label(source.label)
    now = datetime.now(UTC)
    sealed = box.seal(source.secret)
    values = record_values(
        sources, source, secret_ciphertext=sealed, created_at=now, updated_at=now
    )
    try:
        with conn.begin_nested():
            conn.execute(insert(sources).values(values))
    except IntegrityError:
        raise AlreadyExists(
            f"a source labelled {source.label!r} already exists in sandbox {source.sandbox_id!r}"
        ) from None
    source.created_at = source.updated_at = now
    return source


def get_source(
    conn: Connection, sandbox_id: str, id_or_label: str, box: SecretBox | None = None
) -> DataSource:
    """A source by id or label; pass ``box`` only where the secret is needed (building it)."""
    row = conn.execute(
        select(sources).where(
            sources.c.sandbox_id == sandbox_id,
            or_(sources.c.source_id == id_or_label, sources.c.label == id_or_label),
        )
    ).first()
    if row is None:
        raise NotFound(
            f"no source {id_or_label!r} in sandbox {sandbox_id!r} (see 'cairn source list')"
        )
    return _to_source(row, box)


def list_sources(
    conn: Connection, sandbox_id: str, box: SecretBox | None = None
) -> list[DataSource]:
    """Every source of the sandbox, oldest first."""
    rows = conn.execute(
        select(sources).where(sources.c.sandbox_id == sandbox_id).order_by(sources.c.source_id)
    )
    return [_to_source(row, box) for row in rows]


def set_source_status(
    conn: Connection,
    sandbox_id: str,
    source_id: str,
    *,
    status: str,
    reason: str | None,
    checked: bool = False,
    forget_secret: bool = False,
) -> None:
    """Record a health-check result or a revoke (``forget_secret`` drops the ciphertext)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {"status": status, "status_reason": reason, "updated_at": now}
    if checked:
        values["checked_at"] = now
    if forget_secret:
        values["secret_ciphertext"] = None
    _update(conn, sandbox_id, source_id, values)


def find_source(conn: Connection, source_id: str, box: SecretBox) -> DataSource | None:
    """A source by id in any sandbox (webhook deliveries name only the source), or ``None``."""
    row = conn.execute(select(sources).where(sources.c.source_id == source_id)).first()
    return _to_source(row, box) if row is not None else None


def set_source_config(
    conn: Connection, sandbox_id: str, source_id: str, config: dict[str, Any]
) -> None:
    """Replace a source's (non-secret) config."""
    _update(conn, sandbox_id, source_id, {"config": config, "updated_at": datetime.now(UTC)})


def set_source_secret(
    conn: Connection,
    sandbox_id: str,
    source_id: str,
    secret: dict[str, str],
    config: dict[str, Any],
    box: SecretBox,
) -> None:
    """Replace a source's sealed secret and its config together (a webhook secret rotation)."""
    values = {"secret_ciphertext": box.seal(secret), "config": config}
    _update(conn, sandbox_id, source_id, values | {"updated_at": datetime.now(UTC)})


def _update(conn: Connection, sandbox_id: str, source_id: str, values: dict[str, Any]) -> None:
    where = (sources.c.sandbox_id == sandbox_id, sources.c.source_id == source_id)
    conn.execute(update(sources).where(*where).values(values))


def sources_of_kind(conn: Connection, kind: str) -> list[DataSource]:
    """Every live source of a kind, across sandboxes (the scheduler's work list)."""
    rows = conn.execute(
        select(sources).where(sources.c.kind == kind, sources.c.status != "revoked")
    )
    return [_to_source(row, None) for row in rows]
