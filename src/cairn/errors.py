"""Every error Cairn raises on purpose, in one hierarchy.

Transports catch the root once: the CLI prints ``str(error)`` on one line and exits with
``error.exit_code``; the API maps ``error.http_status`` to a problem+json body.
Anything that is *not* a ``CairnError`` is a bug and keeps its traceback.

::

    CairnError                      exit 2 unless stated
    ├── UsageError                  bad input from a person or a script
    │   ├── InvalidSlug
    │   ├── InvalidJSON
    │   │   └── PayloadTooLarge     over a documented size limit (413)
    │   ├── InvalidModelSettings
    │   ├── UnknownBackend          lists the known backends
    │   ├── UnknownSourceKind       lists the known kinds
    │   ├── InvalidScript           a scripted-backend script that cannot run
    │   ├── InvalidDuration         "30d", "24h", "15m" are the accepted forms
    │   └── UnknownWebhookProvider  lists the known providers
    ├── NotFound                    unknown agent slug, run id, source id (HTTP 404)
    ├── AlreadyExists               duplicate slug (409)
    ├── Unauthorized                missing, unknown or revoked API key (401)
    ├── Forbidden                   the key's role may not do this (403)
    ├── Busy                        the backlog is full: retry later (429/503)
    ├── Conflict                    the operation does not fit the current state (409)
    ├── DeliveryRejected            a webhook delivery refused (401/400/413), with a code
    ├── StoreError                  the database cannot be opened or migrated
    └── RunFailure                  ends a run ``failed`` (recorded on the row, not raised)
        ├── ModelError              the backend raised; carries the backend name
        ├── ToolFailure             a tool raised; carries the call id and tool name
        ├── MaxTurnsExceeded
        └── RunTimedOut

A cancelled run is not an error class: anyio's cancellation is the mechanism, and the
runner records ``status="cancelled"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cairn.domain.deliveries import DeliveryFacts


class CairnError(Exception):
    """Root of every error Cairn raises deliberately."""

    exit_code: int = 2
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(CairnError):
    """The input cannot be used as given; the message says what to change."""


class InvalidSlug(UsageError):
    """An agent slug outside ``[a-z0-9-]+``."""


class InvalidJSON(UsageError):
    """A JSON argument (payload, allowlist, settings) that does not parse or has the wrong shape."""


class PayloadTooLarge(InvalidJSON):
    """A body or field over a documented size limit; the message names the limit."""

    http_status = 413


class InvalidModelSettings(UsageError):
    """A model setting out of range or of the wrong type."""


class UnknownBackend(UsageError):
    """A model backend name that no module registered."""


class UnknownSourceKind(UsageError):
    """A tool-source kind that no module registered."""


class InvalidScript(UsageError):
    """A scripted-backend script that is malformed."""


class InvalidDuration(UsageError):
    """A duration such as ``--since`` or ``--older-than`` that does not parse."""


class UnknownWebhookProvider(UsageError):
    """A webhook provider name that no module registered."""


class NotFound(CairnError):
    """The named agent, run or source does not exist in this sandbox."""

    http_status = 404


class AlreadyExists(CairnError):
    """A unique name (an agent slug in a sandbox) is taken."""

    http_status = 409


class Unauthorized(CairnError):
    """No valid API key: missing, malformed, unknown or revoked."""

    http_status = 401


class Forbidden(CairnError):
    """The key is valid but its role does not allow the operation."""

    http_status = 403


class Busy(CairnError):
    """The backlog is full: nothing was accepted or recorded; retry after ``retry_after_s``
    (sent as ``Retry-After``: 429 on the API, 503 on webhooks)."""

    exit_code = 4
    http_status = 429

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Conflict(CairnError):
    """The operation does not fit the object's current state (e.g. cancelling a finished run)."""

    http_status = 409


class DeliveryRejected(CairnError):
    """A webhook delivery that is refused: ``http_status`` says how (401, 400, 413),
    ``facts`` (a ``cairn.domain.deliveries.DeliveryFacts``) what the provider sent and the
    refusal code, so the refusal is recorded as data, not only as prose."""

    def __init__(
        self, message: str, http_status: int = 401, facts: DeliveryFacts | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.facts = facts


class StoreError(CairnError):
    """The ledger database cannot be opened, reached or migrated."""

    exit_code = 3
    http_status = 503


class RunFailure(CairnError):
    """Ends a run ``failed``; the runner records it on the row rather than raising it."""

    error_type: str = "run_failure"


ModelErrorReason = Literal[
    "auth",
    "unknown_model",
    "rate_limited",
    "server_error",
    "timeout",
    "context_too_long",
    "bad_request",
    "connection",
    "other",
]


class ModelError(RunFailure):
    """The model backend raised or returned an error.

    ``reason`` classifies it for people and for ``explain``; ``retryable`` errors (rate
    limits, 5xx, dropped connections) are retried by the runner with backoff, waiting at
    least ``retry_after_s`` when the provider said so. Messages never include credentials.
    """

    error_type = "model_error"

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        status_code: int | None = None,
        reason: ModelErrorReason = "other",
        retryable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.backend = backend
        self.status_code = status_code
        self.reason: ModelErrorReason = reason
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class ToolFailure(RunFailure):
    """A tool call failed in a way that ends the run (not an ordinary tool error result)."""

    error_type = "tool_failure"

    def __init__(self, message: str, *, call_id: str, tool_name: str) -> None:
        super().__init__(message)
        self.call_id = call_id
        self.tool_name = tool_name


class MaxTurnsExceeded(RunFailure):
    """The model still wanted tools after ``max_turns`` turns."""

    error_type = "max_turns_exceeded"


class RunTimedOut(RunFailure):
    """The run took longer than ``timeout_s``."""

    error_type = "timeout"
