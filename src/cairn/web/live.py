"""The runs page's live tail: every agent's runs of a sandbox on one SSE connection.

The API streams one agent's runs (``…/agents/{slug}/runs/stream``); a browser holds at most
six connections to a host, so a page of many agents cannot open one each. This stream
follows the whole sandbox on the in-process bus, agents created while it is open included,
as ``run`` events (``cairn.api.streams.follow_runs``).

On connect it first sends what the page may have missed between rendering and connecting:
the runs newer than the newest one on the page (``after``), and the current state of the
runs the page shows as live (``watch``). Duplicates are harmless: the page upserts by id.
"""

from __future__ import annotations

from typing import Any

from cairn.errors import NotFound
from cairn.services.app import App


def catch_up(app: App, sandbox: str, after: str | None, watch: list[str]) -> list[dict[str, Any]]:
    """Summaries of the runs made after ``after`` (oldest first) and of the ``watch`` runs."""
    from cairn.runner.bus import run_summary
    from cairn.services import runs as run_service

    found: dict[str, dict[str, Any]] = {}
    if after:
        newest = run_service.list_runs(app, sandbox, run_service.RunQuery(limit=100))
        for run in reversed(newest):
            if run.run_id > after:
                found[run.run_id] = run_summary(run)
    for run_id in watch[:100]:
        try:
            run = run_service.get_run(app, sandbox, run_id)
        except NotFound:
            continue
        found[run.run_id] = run_summary(run)
    return list(found.values())
