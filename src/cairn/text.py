"""Small text helpers every layer phrases with: one copy, so a timestamp, a clipped value or
a count reads the same in a diagnosis, a Concierge answer, the CLI and the dashboard.
Standard library only (the CLI's cold start imports this)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")


def iso(value: Any) -> str | None:
    """A datetime in ISO 8601, anything else (``None``) as ``None``: a JSON field."""
    return value.isoformat() if isinstance(value, datetime) else None


def record(item: Any, *omit: str) -> dict[str, Any]:
    """A dataclass's fields in their order as a JSON object, datetimes in ISO 8601, but
    those named in ``omit`` (a secret): the shown form of a record, to which a ``to_dict``
    adds or replaces what is shown otherwise (nested records, rounded or derived values)."""
    values = ((f.name, getattr(item, f.name)) for f in fields(item) if f.name not in omit)
    return {name: iso(value) if isinstance(value, datetime) else value for name, value in values}


def from_record(kind: type[T], data: Mapping[str, Any], **given: Any) -> T:
    """Inverse of ``record``: the dataclass ``kind`` from its shown form, its datetime fields
    read from ISO 8601, ``given`` taken as they are, and a field ``data`` lacks left to its
    default (for clients rendering what the API returned)."""
    values = dict(given)
    for item in fields(kind):  # type: ignore[arg-type]
        if item.name in values or item.name not in data:
            continue
        value = data[item.name]
        if value and "datetime" in str(item.type):  # annotations are strings here
            value = datetime.fromisoformat(value)
        values[item.name] = value
    return kind(**values)


def clip(value: Any, width: int = 160) -> str:
    """One line of at most ``width`` characters ending in ``…`` when cut; a value other than
    a string is shown as compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 tool``, ``2 tools``, ``3 retries``; ``many`` for an irregular plural."""
    if count == 1:
        return f"{count} {word}"
    if many is not None:
        return f"{count} {many}"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "o", "u"):
        return f"{count} {word[:-1]}ies"
    return f"{count} {word}s"


def bare_url(url: str) -> str:
    """``url`` without user info, query or fragment (an IPv6 host in brackets): where
    requests go, safe to print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def names(items: list[str], limit: int = 6) -> str:
    """``a, b and c`` (``… and N more`` past ``limit``)."""
    shown = [str(item) for item in items[:limit]]
    if len(items) > limit:
        return ", ".join(shown) + f" and {len(items) - limit} more"
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def tally(counts: Counter[str], most: int | None = None) -> str:
    """``timeout x3, auth x1``: each key with its count, the most frequent first (the
    first ``most`` only, when given)."""
    return ", ".join(f"{key} x{count}" for key, count in counts.most_common(most))


def unique(values: Iterable[T]) -> list[T]:
    """``values`` in order, once each."""
    return list(dict.fromkeys(values))


def capitalised(text: str) -> str:
    """``text`` with its first letter upper-cased (the rest as it is), to start a sentence."""
    return text[:1].upper() + text[1:]
