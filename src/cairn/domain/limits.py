"""What Cairn accepts as JSON, checked at every intake, and how it reads what is stored.

One table of limits (documented in docs/security.md) holds for every path JSON comes in
by: API bodies, webhook deliveries, MCP tool results and model output. A value nested
deeper than ``MAX_DEPTH``, a body over its size limit, or the non-standard constants
``NaN`` / ``Infinity`` are refused with a message that names the limit, before anything is
stored. Reading is defensive as well: a stored value that breaks the rules (written by an
older version, or straight into the database) is shown as a placeholder, so one record can
never make a listing fail.

Pure functions, no third-party imports: the CLI's fast read path uses them too.
"""

from __future__ import annotations

import json
from typing import Any

from cairn.errors import InvalidJSON, PayloadTooLarge

MAX_DEPTH = 32
"""Deepest nesting of arrays/objects accepted anywhere (an event payload, a tool result)."""
MAX_REQUEST_BYTES = 1024 * 1024
"""Largest API request body (1 MiB); webhook deliveries have their own, smaller limit."""
MAX_TEXT_CHARS = 200_000
"""Longest prompt, system prompt or tool-result text accepted (characters)."""
MAX_TOOL_RESULT_CHARS = 200_000
"""Longest tool result kept (longer ones are cut, saying so)."""
READ_DEPTH = 64
"""Deeper stored values are shown as a placeholder (intake allows only ``MAX_DEPTH``)."""


def strict_constant(name: str) -> Any:
    """``parse_constant`` for ``json.loads``: ``NaN``/``Infinity`` are refused."""
    raise InvalidJSON(f"{name} is not JSON: send numbers, or null")


def depth_over(value: Any, limit: int) -> int | None:
    """The nesting depth of ``value`` if it exceeds ``limit``, else ``None`` (iterative: a
    value too deep for recursion is measured too; it stops at the first level past it)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if level > limit:
            return level
        stack.extend((child, level + 1) for child in children)
    return None


def check_value(value: Any, what: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` if it keeps to the limits, else ``InvalidJSON`` naming ``what``."""
    deep = depth_over(value, max_depth)
    if deep is not None:
        raise InvalidJSON(
            f"{what} is nested more than {max_depth} levels deep; the limit is {max_depth}"
        )
    _check_floats(value, what)
    return value


def _check_floats(value: Any, what: str) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and (item != item or item in (float("inf"), float("-inf"))):
            raise InvalidJSON(f"{what} holds {item!r}, which is not JSON: send a number or null")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def loads(data: bytes | str, what: str, *, max_bytes: int | None = None) -> Any:
    """Parse JSON within the limits: too big → ``PayloadTooLarge`` (413); too deep, NaN or
    Infinity, or not JSON → ``InvalidJSON`` (400), each naming the limit it broke."""
    if max_bytes is not None and len(data) > max_bytes:
        raise PayloadTooLarge(f"{what} is {len(data)} bytes; the limit is {max_bytes} bytes")
    try:
        value = json.loads(data, parse_constant=strict_constant)
    except RecursionError:
        raise InvalidJSON(
            f"{what} is nested more than {MAX_DEPTH} levels deep; the limit is {MAX_DEPTH}"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidJSON(f"{what} is malformed JSON ({exc})") from None
    return check_value(value, what)


def readable(value: Any) -> Any:
    """What a reader shows for a stored value: the value, or a placeholder when it could not
    be shown safely (too deep to serialize)."""
    if isinstance(value, (dict, list)) and depth_over(value, READ_DEPTH) is not None:
        return _too_deep()
    return value


def read_json(text: str | bytes) -> Any:
    """The store's JSON reader: what ``readable`` makes of the stored text. A value too deep
    to parse, ``NaN`` and ``Infinity`` (which no JSON response can carry) never fail a read."""
    try:
        value = json.loads(text, parse_constant=lambda _name: None)
    except RecursionError:
        return _too_deep()
    return readable(value)


def _too_deep() -> dict[str, str]:
    return {
        "cairn_unreadable": f"stored value nested more than {READ_DEPTH} levels deep; "
        "not shown (intake refuses such values now)"
    }
