"""Problem+json bodies back into the same ``cairn.errors`` classes the server raised."""

from __future__ import annotations

from typing import Any

from cairn import errors

_BY_STATUS: dict[int, type[errors.CairnError]] = {
    400: errors.UsageError,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    422: errors.UsageError,
    429: errors.Busy,
    503: errors.StoreError,
}


def error_from_problem(status: int, body: Any) -> errors.CairnError:
    """The exception for an error response: the class the server named when it is a plain
    ``CairnError`` subclass, else the one for the status code."""
    detail = body.get("detail") if isinstance(body, dict) else None
    name = body.get("error") if isinstance(body, dict) else None
    message = str(detail or f"the server answered HTTP {status}")
    candidate = getattr(errors, str(name), None) if name else None
    if isinstance(candidate, type) and issubclass(candidate, errors.CairnError):
        try:
            return candidate(message)
        except TypeError:  # a class that needs more context (e.g. ModelError)
            pass
    return _BY_STATUS.get(status, errors.CairnError)(message)
