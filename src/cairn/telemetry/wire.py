"""Planned spans straight to OTLP protobuf bytes (``ExportTraceServiceRequest``).

Why not the SDK's span objects and encoder: a run's spans are known whole when it ends, and
going through ``Tracer.start_span`` and the generic encoder cost several times the run
itself in CPU, on the same interpreter lock as the runs. Writing the few message types of
the OTLP trace request by hand is a small, fixed schema (opentelemetry-proto's
``trace/v1/trace.proto``), and the tests decode every request with the official
``opentelemetry-proto`` classes, so a mistake here cannot pass unnoticed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cairn.telemetry.spans import AttributeValue, PlannedEvent, PlannedSpan, RunTrace

_KIND = {"internal": 1, "client": 3}
# Span.flags: bit 8 "has remote parent" is known, bit 9 says whether the parent is remote.
_FLAG_CONTEXT_HAS_IS_REMOTE = 0x100
_FLAG_CONTEXT_IS_REMOTE = 0x200


_SMALL = [bytes([n]) for n in range(128)]


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, bytes, messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _text(number: int, value: str) -> bytes:
    return _field(number, value.encode("utf-8"))


def _fixed64(number: int, value: int) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<Q", value)


def _fixed32(number: int, value: int) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<I", value)


def _any_value(value: Any) -> bytes:
    kind = type(value)
    if kind is str:
        return _text(1, value)
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        return b"\x18" + _varint(value)
    if kind is float:
        return b"\x21" + struct.pack("<d", value)
    if kind is list:
        return _field(5, b"".join([_field(1, _any_value(item)) for item in value]))
    return _text(1, str(value))


_PAIRS: dict[tuple[str, str], bytes] = {}
_PAIRS_MAX = 8192


def _pair(key: str, value: Any) -> bytes:
    """One ``KeyValue``. String pairs repeat from run to run (operation, agent, model,
    status, tool names), so their encodings are kept, up to a bound."""
    if type(value) is str:
        cached = _PAIRS.get((key, value))
        if cached is None:
            cached = _text(1, key) + _field(2, _text(1, value))
            if len(_PAIRS) < _PAIRS_MAX:
                _PAIRS[(key, value)] = cached
        return cached
    return _text(1, key) + _field(2, _any_value(value))


def _attributes(number: int, attributes: Mapping[str, AttributeValue]) -> bytes:
    tag = _varint(number << 3 | 2)
    out = []
    for key, value in attributes.items():
        pair = _pair(key, value)
        out.append(tag + _varint(len(pair)) + pair)
    return b"".join(out)


def _event(event: PlannedEvent) -> bytes:
    return _fixed64(1, event.time_ns) + _text(2, event.name) + _attributes(3, event.attributes)


def _span(span: PlannedSpan, trace_id: bytes, parent_id: bytes, remote: bool) -> bytes:
    body = [
        _field(1, trace_id),
        _field(2, span.span_id.to_bytes(8, "big")),
    ]
    if parent_id:
        body.append(_field(4, parent_id))
    body += [
        _text(5, span.name),
        b"\x30" + _varint(_KIND[span.kind]),
        _fixed64(7, span.start_ns),
        _fixed64(8, span.end_ns),
        _attributes(9, span.attributes),
        b"".join(_field(11, _event(event)) for event in span.events),
    ]
    if span.error_type is not None:
        # Status: its message (field 2), and code (field 3) STATUS_CODE_ERROR, which is 2.
        status = (_text(2, span.error_message) if span.error_message else b"") + b"\x18\x02"
        body.append(_field(15, status))
    flags = 0x01 | _FLAG_CONTEXT_HAS_IS_REMOTE | (_FLAG_CONTEXT_IS_REMOTE if remote else 0)
    body.append(_fixed32(16, flags))
    return b"".join(body)


def encode_trace(trace: RunTrace) -> list[bytes]:
    """The encoded ``Span`` messages of one run (parents resolved, ids from the plan)."""
    trace_id = trace.trace_id.to_bytes(16, "big")
    ids = {span.key: span.span_id.to_bytes(8, "big") for span in trace.spans}
    remote = trace.remote_parent
    encoded = []
    for span in trace.spans:
        if span.parent is None:
            parent = remote.span_id.to_bytes(8, "big") if remote is not None else b""
            encoded.append(_span(span, trace_id, parent, remote is not None))
        else:
            encoded.append(_span(span, trace_id, ids[span.parent], False))
    return encoded


def encode_request(
    resource: Mapping[str, AttributeValue], scope: tuple[str, str], spans: Iterable[bytes]
) -> bytes:
    """An ``ExportTraceServiceRequest`` with one resource and one scope holding ``spans``."""
    scope_message = _text(1, scope[0]) + (_text(2, scope[1]) if scope[1] else b"")
    scope_spans = _field(1, scope_message) + b"".join(_field(2, span) for span in spans)
    return _field(1, _field(1, _attributes(1, resource)) + _field(2, scope_spans))


def resource_attributes(attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """SDK resource attributes as plain values (sequences become lists)."""
    plain: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        plain[key] = (
            list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value
        )
    return plain
