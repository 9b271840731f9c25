"""Durations as people type them: ``90s``, ``15m``, ``24h``, ``30d``, ``2w``."""

from __future__ import annotations

import re

from cairn.errors import InvalidDuration

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SECONDS = 100 * 52 * 604800
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ``InvalidDuration`` naming the accepted forms."""
    match = _PATTERN.match(text)
    if not match:
        raise InvalidDuration(
            f"invalid duration {text!r}: use a number and a unit, e.g. 90s, 15m, 24h, 30d, 2w"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_SECONDS:  # also infinity, which a long enough number of digits becomes
        raise InvalidDuration(f"duration {text!r} is too long: at most 100 years (5200w)")
    return seconds
