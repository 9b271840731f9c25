"""Reading vendors' error responses, shared by the SDK backends: how long a rate limit asks
us to wait, and a short, one-line quote of an error body."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from typing import Any

from cairn.errors import ModelError


def retry_after_s(headers: Any) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, else ``retry-after`` (seconds
    or an HTTP date), as the vendor SDKs read them; ``None`` when absent or unreadable."""
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))


def quote_body(body: object) -> str:
    """Something short to quote from an error body (the API's message, or the start of a
    page that is not the API's own, such as a proxy's), on one line."""
    if body is None or body == "":
        return ""
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return " ".join(text.split())[:300]


def connection_lost(
    vendor: str,
    where: str,
    cause: BaseException,
    *,
    answer_started: bool,
    unreachable_remedy: str,
    redact: Callable[[str], str],
) -> ModelError:
    """A connection that failed, classified by what had arrived, never by exception class.

    SDKs wrap transport errors differently from one release to the next (a read error in
    the middle of a stream may come raw or inside the SDK's connection error), so the
    backends track whether any part of the answer was received and pass that here: after
    it the answer was cut mid-way; before it the server could not be reached. Both are
    retryable.
    """
    detail = str(cause) or type(cause).__name__
    if answer_started:
        text = (
            f"the connection to {vendor} at {where} dropped mid-answer, after part of the "
            f"answer had arrived ({detail}): try again; if it keeps happening, check the "
            "network or proxy"
        )
    else:
        text = f"could not reach {vendor} at {where} ({detail}): {unreachable_remedy}"
    return ModelError(redact(text), backend=vendor, reason="connection", retryable=True)
