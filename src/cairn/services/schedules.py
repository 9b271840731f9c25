"""Schedule sources: cron expressions (with a time zone) that emit ``schedule.tick`` events.

The server's scheduler calls ``tick_due`` about once a second. The last tick time is kept
in the source's config, so after a restart the rule is simple and documented: the ticks
missed while the server was down become ONE catch-up tick (``missed`` = how many were
skipped), never a burst.

Several servers on one ledger each run a scheduler; a tick still fires once, because its
event carries the sender id ``<source>@<scheduled time>``, unique per source in the
ledger: the second server's insert finds the first's event and decides nothing. The tick
is emitted before ``last_tick_at`` moves, so a crash in between re-emits the same (deduped)
tick rather than losing it.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cairn.domain.sources import DataSource
from cairn.errors import Busy, UsageError
from cairn.ids import new_id
from cairn.services.app import App
from cairn.store import sources as source_store
from cairn.store.sandboxes import require_sandbox

MAX_MISSED_COUNT = 10_000  # counting skipped ticks stops here (a per-minute cron down for weeks)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {name!r}: use an IANA name like Europe/Paris"
        ) from None


CHECKED_TICKS = 500
"""How many upcoming ticks the minimum-interval check looks at (a year of a daily cron)."""


def _check_cron(expression: str, min_interval_s: float) -> None:
    """Five fields (minute hour day month weekday) or a ``@daily``-style alias, and no two
    ticks closer than ``min_interval_s``: croniter also takes a sixth, seconds field, which
    would fire every second and bill a real model for it."""
    from croniter import croniter

    fields = expression.split()
    aliased = len(fields) == 1 and fields[0].startswith("@")
    if not aliased and len(fields) != 5:
        raise UsageError(
            f"invalid cron expression {expression!r}: five fields "
            f"(minute hour day month weekday) are needed, got {len(fields)}; e.g. '0 2 * * *'"
        )
    if not croniter.is_valid(expression):
        raise UsageError(f"invalid cron expression {expression!r}: e.g. '0 2 * * *'")
    times = croniter(expression, datetime(2026, 1, 1, tzinfo=UTC))
    ticks = [times.get_next(float) for _ in range(CHECKED_TICKS)]
    shortest = min(later - earlier for earlier, later in itertools.pairwise(ticks))
    if shortest < min_interval_s:
        raise UsageError(
            f"cron {expression!r} fires every {shortest:g} s, more often than the minimum "
            f"of {min_interval_s:g} s (CAIRN_MIN_SCHEDULE_INTERVAL_S)"
        )


def add_schedule_source(
    app: App, sandbox_id: str, label: str, cron: str, timezone: str = "UTC"
) -> DataSource:
    """A schedule source; its first tick is the first cron time after now."""
    _check_cron(cron, app.settings.min_schedule_interval_s)
    _zone(timezone)
    now = datetime.now(UTC)
    source = DataSource(
        new_id("src"),
        sandbox_id,
        "schedule",
        label,
        {"cron": cron, "timezone": timezone, "last_tick_at": now.isoformat()},
    )
    with app.store.begin() as conn:
        require_sandbox(conn, sandbox_id)
        source_store.create_source(conn, source, app.secrets)
    return source


def _due(source: DataSource, now: datetime) -> tuple[datetime, int] | None:
    """The latest cron time in (last tick, now] and how many earlier ones it replaces."""
    from croniter import croniter

    zone = _zone(source.config.get("timezone", "UTC"))
    last = datetime.fromisoformat(source.config["last_tick_at"]).astimezone(zone)
    times = croniter(source.config["cron"], last)
    due: datetime | None = None
    skipped = 0
    while True:
        candidate = times.get_next(datetime)
        if candidate > now.astimezone(zone):
            break
        if due is not None:
            skipped += 1
        due = candidate
        if skipped >= MAX_MISSED_COUNT:
            due = croniter(source.config["cron"], now.astimezone(zone)).get_prev(datetime)
            break
    return (due, skipped) if due is not None else None


async def tick_due(app: App, now: datetime | None = None) -> list[str]:
    """Emit the ticks that are due now for every schedule source; returns the event ids."""
    from cairn.services.ingest import ingest

    now = now or datetime.now(UTC)
    with app.store.connect() as conn:
        schedules = source_store.sources_of_kind(conn, "schedule")
    emitted: list[str] = []
    for source in schedules:
        due = _due(source, now)
        if due is None:
            continue
        scheduled_for, missed = due
        payload = {
            "scheduled_for": scheduled_for.isoformat(),
            "timezone": source.config.get("timezone", "UTC"),
            "missed": missed,
        }
        try:
            result = await ingest(
                app,
                source,
                "schedule.tick",
                payload,
                f"{source.source_id}@{scheduled_for.isoformat()}",
            )
        except Busy:  # the backlog is full: the tick stays due and is emitted next time
            continue
        config: dict[str, Any] = dict(source.config, last_tick_at=now.isoformat())
        with app.store.begin() as conn:
            source_store.set_source_config(conn, source.sandbox_id, source.source_id, config)
        if not result.duplicate:
            emitted.append(result.event_id)
    return emitted


async def run_scheduler(app: App, interval_s: float = 1.0) -> None:
    """The server's scheduler loop (cancelled at shutdown)."""
    import logging

    import anyio

    log = logging.getLogger("cairn.scheduler")
    while True:
        try:
            await tick_due(app)
        except Exception:  # one bad schedule must not stop the others next second
            log.exception("scheduler tick failed")
        await anyio.sleep(interval_s)
