"""How an event reaches the model: the first user message of every run.

One rendering for every kind of fire, so a test fire with a payload is exactly what a
trigger firing on the same payload would deliver.
"""

from __future__ import annotations

import json
from typing import Any


def render_event_message(payload: Any) -> str:
    """A string payload is sent as is; anything else as labelled, stable, indented JSON."""
    if isinstance(payload, str):
        return payload
    return "Event payload:\n" + json.dumps(payload, indent=2, sort_keys=True, default=str)
