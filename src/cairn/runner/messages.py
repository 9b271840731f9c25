"""How an event reaches the model: the first user message of every run.

One rendering for every kind of fire, so a test fire with a payload is exactly what a
trigger firing on the same payload would deliver.
"""

from __future__ import annotations

import json
from typing import Any


def render_event_message(payload: Any) -> str:
    """A string payload is sent as is; anything else as labelled JSON with sorted keys (stable
    for caching and for scripted token counts; compact, because indenting costs a
    pure-Python encoder pass on every fire)."""
    if isinstance(payload, str):
        return payload
    return "Event payload:\n" + json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
