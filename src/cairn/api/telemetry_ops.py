"""The telemetry status operation, for the HTTP route and the in-process SDK alike.

It reports this process's OpenTelemetry export (``cairn.telemetry.export_status``): in the
server, what the server sent and dropped; in-process, the calling process's own exporter.
"""

from __future__ import annotations

from typing import Any

from cairn.api.operations import JSON, Caller


def get_telemetry(caller: Caller) -> JSON:
    """Export on or off, the endpoint (without credentials), runs and spans sent and dropped.
    Any valid key may read it: nothing in it belongs to a sandbox."""
    from cairn.telemetry import export_status

    return export_status()


LOCAL_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "//telemetry", lambda c, p, j, m: get_telemetry(c)),
]
