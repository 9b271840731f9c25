"""Refused webhook deliveries are recorded, but a flood of them cannot fill the disk.

Anyone who knows a webhook's URL can post to it without the secret; each refusal used to be
one stored row. Now each source gets ``PER_WINDOW`` recorded refusals per ``WINDOW_S``; the
rest are counted, and the next recorded refusal of that source says how many were left out
(``… (and 4,312 more refused deliveries not recorded since 12:00:03Z)``). Kept in the
serving process: a restart forgets the counts, not the rows.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

PER_WINDOW = 10
WINDOW_S = 60.0


@dataclass(slots=True)
class _Window:
    started: float
    recorded: int = 0
    dropped: int = 0
    dropped_since: str = ""


class RejectionLimiter:
    """Decides which refusals of a source are recorded, and aggregates the others."""

    def __init__(self, per_window: int = PER_WINDOW, window_s: float = WINDOW_S) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def admit(self, source_id: str, reason: str) -> str | None:
        """The reason to record (with the count left out before it), or ``None`` to only
        count this refusal."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(source_id)
            if window is None or now - window.started >= self.window_s:
                carried = (window.dropped, window.dropped_since) if window else (0, "")
                window = self._windows[source_id] = _Window(now)
                if carried[0]:
                    window.dropped, window.dropped_since = carried
                if len(self._windows) > 10_000:  # forget quiet sources
                    self._windows = {source_id: window}
            if window.recorded >= self.per_window:
                if not window.dropped:
                    window.dropped_since = datetime.now(UTC).isoformat(timespec="seconds")
                window.dropped += 1
                return None
            window.recorded += 1
            if window.dropped:
                reason = (
                    f"{reason} (and {window.dropped:,} more refused deliveries not recorded "
                    f"since {window.dropped_since})"
                )
                window.dropped = 0
            return reason
