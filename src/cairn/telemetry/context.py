"""W3C Trace Context (``traceparent``) as Cairn takes it in from a caller.

A webhook delivery or an API fire that carries ``traceparent`` has its run exported as a
child of the caller's span, in the caller's trace. The header is read here without
OpenTelemetry (which is imported only when export is on), and a malformed one is ignored,
as the W3C recommendation says: a caller's tracing bug must never refuse a fire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


@dataclass(frozen=True, slots=True)
class RemoteParent:
    """The caller's span: the run's root span becomes its child."""

    trace_id: int
    span_id: int
    sampled: bool


def valid_traceparent(value: str | None) -> str | None:
    """``value`` normalised (lower case, version 00 fields only), or ``None`` when it is
    absent or malformed (all-zero ids, version ``ff``, wrong lengths)."""
    parent = parse_traceparent(value)
    if parent is None:
        return None
    return f"00-{parent.trace_id:032x}-{parent.span_id:016x}-{'01' if parent.sampled else '00'}"


def parse_traceparent(value: str | None) -> RemoteParent | None:
    """The caller's span from a ``traceparent`` value, or ``None`` when it is not valid."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    version, trace_hex, span_hex, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    return RemoteParent(trace_id, span_id, sampled=bool(int(flags, 16) & 1))
