"""Cost-watch on its own: ``cairn serve`` enforces usage thresholds every
``CAIRN_COST_WATCH_INTERVAL_S`` seconds (30 by default), so a runaway agent whose threshold
says ``pause_triggers`` has its triggers paused within a minute of crossing it, with no
command and no cron. Each pause is recorded with its reason (``list_enforcements``), which
``cairn doctor``, ``events explain`` and the dashboard show. ``cairn usage enforce`` stays
for deployments without a long-running server.
"""

from __future__ import annotations

import logging

import anyio

from cairn.errors import CairnError
from cairn.services.access import list_sandboxes
from cairn.services.app import App
from cairn.services.usage import enforce_thresholds, list_thresholds, roll_up_pending

logger = logging.getLogger(__name__)


def tick(app: App) -> dict[str, list[str]]:
    """One pass of the watch: catch the usage rollup up (a few batches), then enforce."""
    roll_up_pending(app, max_batches=4)
    return enforce_everywhere(app)


def enforce_everywhere(app: App) -> dict[str, list[str]]:
    """One pass: enforce the thresholds of every sandbox that has any. Returns the triggers
    paused, by sandbox (only sandboxes where something was paused)."""
    paused: dict[str, list[str]] = {}
    for sandbox_id, _name in list_sandboxes(app):
        if not any(t.pause_triggers for t in list_thresholds(app, sandbox_id)):
            continue
        flags = enforce_thresholds(app, sandbox_id)
        triggers = sorted({t for flag in flags for t in flag.paused_trigger_ids})
        if triggers:
            paused[sandbox_id] = triggers
    return paused


async def watch_thresholds(app: App) -> None:
    """Enforce every ``cost_watch_interval_s`` until cancelled. A failing pass (the ledger
    briefly unreachable) is logged and retried on the next tick, never fatal to the server."""
    interval = max(app.settings.cost_watch_interval_s, 0.05)
    while True:
        try:
            paused = await anyio.to_thread.run_sync(tick, app)
        except CairnError as exc:
            logger.warning("cost-watch pass failed; retrying in %.0f s: %s", interval, exc)
        else:
            for sandbox_id, triggers in paused.items():
                logger.warning(
                    "cost-watch paused triggers %s in sandbox %s (see cairn doctor)",
                    ", ".join(triggers),
                    sandbox_id,
                )
        await anyio.sleep(interval)
