"""Prefixed, time-sortable identifiers (``run_01JD…``).

An id is a prefix, an underscore and 26 Crockford base32 characters: 48 bits of
milliseconds since the epoch then 80 bits that are random for the first id of a
millisecond and incremented after it. So ids sort by creation time even within one
process's millisecond, which is what lets the ledger use ``run_id`` itself as its
keyset-pagination cursor and turn a time window into an id range.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RANDOM_BITS = 80
_lock = threading.Lock()
_last_ms = -1
_last_random = 0


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new id for ``prefix`` (``run``, ``src``, ``agt``, …), above any made before it here."""
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            now_ms = _last_ms
            _last_random += 1
        else:
            _last_random = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms = now_ms
        value = (now_ms << _RANDOM_BITS) | (_last_random & ((1 << _RANDOM_BITS) - 1))
    return f"{prefix}_{_encode(value)}"


def id_at(prefix: str, epoch_seconds: float) -> str:
    """An id for a past moment (imports, backfills, tests); random within that millisecond."""
    random_part = int.from_bytes(os.urandom(10), "big") >> 1
    return f"{prefix}_{_encode((int(epoch_seconds * 1000) << _RANDOM_BITS) | random_part)}"


def id_floor(prefix: str, epoch_seconds: float) -> str:
    """The smallest id that could have been made at ``epoch_seconds``: a time-window bound."""
    return f"{prefix}_{_encode(int(epoch_seconds * 1000) << _RANDOM_BITS)}"


def id_time_ms(identifier: str) -> int:
    """The millisecond an id was made at (``id_floor``'s inverse, to the millisecond)."""
    value = 0
    for char in identifier.rsplit("_", 1)[-1]:
        value = value * 32 + _ALPHABET.index(char)
    return value >> _RANDOM_BITS
