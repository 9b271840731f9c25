"""Reading vendors' error responses, shared by the SDK backends: how long a rate limit asks
us to wait, and a short, one-line quote of an error body."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any


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
