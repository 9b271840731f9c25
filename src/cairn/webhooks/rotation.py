"""A webhook source's signing secrets, and rotation: two secrets valid during a window.

The source's sealed secret holds ``signing_secret`` (the current one) and, while a rotation
window is open, ``previous_signing_secret``; ``config.previous_secret_until`` (ISO time,
shown, not secret) says when the previous one stops verifying. Senders switch at their own
pace inside the window (Stripe and Svix send both signatures meanwhile), so no delivery is
refused during the changeover.
"""

from __future__ import annotations

from datetime import datetime

from cairn.domain.sources import DataSource

CURRENT = "signing_secret"
PREVIOUS = "previous_signing_secret"


def live_secrets(source: DataSource, now: float) -> list[str]:
    """The secrets that verify a delivery received at ``now`` (unix seconds), current first."""
    found = [source.secret[CURRENT]] if source.secret.get(CURRENT) else []
    previous = source.secret.get(PREVIOUS)
    until = source.config.get("previous_secret_until")
    if previous and until and datetime.fromisoformat(str(until)).timestamp() > now:
        found.append(previous)
    return found
