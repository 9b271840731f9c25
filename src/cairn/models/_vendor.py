"""What every SDK backend does the same way, written once: the vendor modules keep only
their wire mapping (request parameters, stream events, the vendor's error codes).

Every vendor module has two parts, kept apart as in ``pydantic-ai``: a provider owns the
credential and builds SDK clients (the only object that ever holds the key), and a wire
adapter turns a ``ModelRequest`` into the vendor's request and its stream into Cairn's
``TextDelta`` / ``ToolCallRequest`` / ``TurnEnd``. Every adapter guarantees:

* Text is yielded as it arrives; tool calls only once the stream has ended well (a stream
  cut short must not run a tool with half its arguments); one ``TurnEnd`` last, with the
  stop reason normalised (``end_turn``, ``tool_use``, ``max_tokens``, ``other``).
* Usage follows docs/ledger.md's table. Vendors repeat running totals, so the last value
  seen wins (never a sum of chunks).
* The SDK's retries are off: the runner retries, and records each retry as a run event.
  Failures become ``ModelError`` with a reason, ``retryable`` and the wait the vendor asked
  for; messages name the model and the remedy, never the key.
* The stream is read inside the SDK's context managers, so cancelling a run closes the HTTP
  response at once.
* The SDK is imported when a turn runs, not when the module is imported; a missing SDK
  fails the run with the extra to install.

* ``import_sdk``: the vendor SDK, or a ``ModelError`` naming the extra that installs it.
* ``VendorProvider``: the one object that holds the key; says whether there is one, blanks
  it out of text (``redact``) and names where requests go (``where``). Each vendor adds
  ``client()``, which builds its SDK client.
* ``VendorBackend``: settings and provider, and the errors a person reads, in the same
  words on every vendor: no key, a timeout, a dropped connection, a stream Cairn could not
  read or that ended early, tool arguments that are not a JSON object, and the
  classification of an error response (``_status_error``): one chain by HTTP status, with
  hooks for what a vendor says differently (its remedies, its own "quota used up" codes).
* ``retry_after_s`` / ``quote_body``: reading error responses.
"""

from __future__ import annotations

import email.utils
import importlib
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

from cairn.domain.agents import ModelSettings
from cairn.domain.limits import MAX_DEPTH, check_value, strict_constant
from cairn.errors import InvalidJSON, ModelError, ModelErrorReason
from cairn.models.base import Credentials
from cairn.text import bare_url

# The prompt does not fit the model's context, in the words vendors (and the servers that
# imitate them) use in a 400's message.
CONTEXT_TOO_LONG = re.compile(
    r"prompt is too long|context[ _](?:limit|window|length)|maximum context length"
    r"|too many (?:input )?tokens|exceeds? the (?:model'?s? )?(?:maximum )?context"
    r"|input token count.*exceeds|exceeds the maximum number of tokens",
    re.IGNORECASE | re.DOTALL,
)

CONNECT_TIMEOUT_S = 10.0
"""How long the SDKs that take a connect timeout may take to connect."""

Category = str
"""A kind of failure: a key of ``_CATEGORIES`` (vendors may add their own, with a text)."""

# Each kind of failure: its reason, whether a retry may help, and what the person reads
# (``{server}``, ``{said}``, ``{model}`` filled in; ``{hint}`` is the vendor's addition).
_CATEGORIES: dict[Category, tuple[ModelErrorReason, bool, str]] = {
    "key": ("auth", False, "{server} rejected the API key ({said}): {hint}"),
    "forbidden": (
        "auth",
        False,
        "{server} refused the request ({said}): the API key may not use model {model!r}{hint}",
    ),
    "billing": ("other", False, ""),
    "not_found": (
        "unknown_model",
        False,
        "{server} does not know model {model!r} ({said}): check model_settings.model{hint}",
    ),
    "too_long": (
        "context_too_long",
        False,
        "the conversation is too long for model {model!r} ({said}): shorten the system prompt, "
        "the event payload or the tool results, or lower max_tokens",
    ),
    "bad_request": ("bad_request", False, "{server} rejected the request ({said}){hint}"),
    "used_up": ("rate_limited", False, "{hint}"),
    "rate_limited": ("rate_limited", True, "{server} rate-limited the request ({said}){hint}"),
    "timeout": ("timeout", True, "{server} timed out on its side ({said}): try again later"),
    "overloaded": ("server_error", True, "{server} {hint} ({said}): try again later"),
    "server_error": ("server_error", True, "{server} had a server error ({said}): try again later"),
    "other": ("other", False, "{server} answered {said}"),
}


def import_sdk(backend: str, module: str, package: str) -> Any:
    """The SDK ``module``, or a ``ModelError`` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelError(
            f"the {backend} backend needs the {package} SDK, which is not installed: "
            f"pip install 'cairn-runtime[{backend}]'",
            backend=backend,
            reason="other",
        ) from None


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


def result_text(content: Any) -> str:
    """A tool's result as message text: text as is, anything else as JSON."""
    return content if isinstance(content, str) else json.dumps(content, default=str)


def parse_arguments(raw: str) -> tuple[dict[str, Any], str | None]:
    """A tool call's streamed arguments, parsed strictly (SDKs parse leniently, for
    display), and what is wrong with them if they are not a JSON object."""
    if not raw.strip():
        return {}, None
    try:  # within the intake limits: model output is JSON from outside like any other
        value = json.loads(raw, parse_constant=strict_constant)
    except json.JSONDecodeError as exc:
        return {}, str(exc)
    except InvalidJSON as exc:
        return {}, str(exc)
    except RecursionError:
        return {}, f"nested too deep; the limit is {MAX_DEPTH}"
    return check_arguments(value)


def check_arguments(value: Any) -> tuple[dict[str, Any], str | None]:
    """Already-decoded arguments (``None`` is none), and what is wrong if not an object
    or beyond the intake limits (nesting depth, NaN)."""
    if value is None:
        return {}, None
    try:
        check_value(value, "the arguments")
    except InvalidJSON as exc:
        return {}, str(exc)
    if not isinstance(value, dict):
        return {}, f"a JSON {type(value).__name__}"
    return value, None


class VendorProvider:
    """Holds the API key and where to send requests; subclasses build the SDK client.

    A client per turn (closed when the turn ends) means no connection pool outlives a run,
    whatever the caller does with the backend afterwards.
    """

    default_base_url: ClassVar[str]
    base_url_env: ClassVar[str | None] = None
    """The SDK's own variable for its base URL, consulted only if the SDK consults it."""

    def __init__(self, api_key: str | None, *, base_url: str | None, timeout_s: float) -> None:
        self._api_key = (api_key or "").strip() or None
        self.base_url = base_url or None
        self.timeout_s = timeout_s

    def sdk_timeout(self, sdk: Any) -> Any:
        """The SDK's ``Timeout``: ``timeout_s`` between bytes, and a connection within
        ``CONNECT_TIMEOUT_S`` (a dead host fails fast)."""
        return sdk.Timeout(self.timeout_s, connect=min(CONNECT_TIMEOUT_S, self.timeout_s))

    @property
    def has_key(self) -> bool:
        """Whether a key is configured (a turn without one fails before any request)."""
        return self._api_key is not None

    def redact(self, text: str) -> str:
        """``text`` with the key blanked out, for anything that may reach a person or a log."""
        if self._api_key and len(self._api_key) >= 4:
            return text.replace(self._api_key, "[redacted]")
        return text

    def where(self) -> str:
        """Where requests go (as the SDK decides), without credentials or query string."""
        env = os.environ.get(self.base_url_env) if self.base_url_env else None
        return bare_url(self.base_url or env or self.default_base_url).rstrip("/")


@dataclass(frozen=True, slots=True)
class ErrorFacts:
    """What an error response (or an error inside a 200 stream) said, in one shape.

    ``said`` is the vendor's own rendering of where the error came from and its message
    (quoted in every text); ``code`` / ``type`` / ``param`` / ``details`` are the vendor's
    finer codes, read by its hooks. ``headers`` is ``None`` for an error inside a stream.
    """

    status: int
    said: str
    message: str
    headers: Mapping[str, str] | None
    status_code: int | None
    code: str = ""
    type: str = ""
    param: str = ""
    details: list[dict[str, Any]] = field(default_factory=list)


class VendorBackend:
    """Settings, provider, and every error a person reads. Constructed per run by the
    registry as ``Backend(settings, credentials)``; ``request_timeout_s`` (default: the
    agent's ``timeout_s``) bounds each HTTP read, for embedders that want a stall to fail
    (and be retried) well before the run's own deadline. Subclasses set ``name``,
    ``key_hint`` and ``provider_class``, and implement ``stream``."""

    name: ClassVar[str]
    key_hint: ClassVar[str]
    provider_class: ClassVar[type[VendorProvider]]
    provider: VendorProvider

    bad_request_statuses: ClassVar[tuple[int, ...]] = (400,)
    overloaded_statuses: ClassVar[Mapping[int, str]] = {}
    """Statuses that mean "too busy now", with how the vendor is said to be."""
    retryable_other: ClassVar[tuple[int, ...]] = (409,)
    honours_should_retry: ClassVar[bool] = True
    forbidden_hint: ClassVar[str] = ""
    no_key_hint: ClassVar[str] = ""

    def __init__(
        self,
        settings: ModelSettings,
        credentials: Credentials,
        *,
        request_timeout_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.provider = self.provider_class(
            credentials.api_key(self.name),
            base_url=settings.base_url,
            timeout_s=request_timeout_s or settings.timeout_s,
        )

    # --- errors every vendor words the same ---------------------------------------------

    def _no_key(self) -> ModelError:
        return ModelError(
            f"no API key for {self.name}: {self.key_hint}{self.no_key_hint}",
            backend=self.name,
            reason="auth",
        )

    def _timeout(self) -> ModelError:
        return ModelError(
            f"{self.name} did not answer within {self.provider.timeout_s:g} s (model "
            f"{self.settings.model!r} at {self.provider.where()}): the service is slow or "
            "unreachable; try again later or raise timeout_s",
            backend=self.name,
            reason="timeout",
            retryable=True,
        )

    def _unreachable_remedy(self) -> str:
        return "check the network and model_settings.base_url"

    def _dropped(self, cause: BaseException, *, answer_started: bool) -> ModelError:
        """A connection that failed, classified by what had arrived, never by exception
        class: SDKs wrap transport errors differently from one release to the next, so the
        backends track whether any part of the answer was received. After it the answer
        was cut mid-way; before it the server could not be reached. Both are retryable."""
        detail = str(cause) or type(cause).__name__
        where = self.provider.where()
        if answer_started:
            text = (
                f"the connection to {self.name} at {where} dropped mid-answer, after part of "
                f"the answer had arrived ({detail}): try again; if it keeps happening, check "
                "the network or proxy"
            )
        else:
            remedy = self._unreachable_remedy()
            text = f"could not reach {self.name} at {where} ({detail}): {remedy}"
        return ModelError(
            self.provider.redact(text), backend=self.name, reason="connection", retryable=True
        )

    def _sender(self) -> str:
        """Who sent the stream, as the start of a sentence."""
        return self.name

    def _unreadable(self, exc: BaseException) -> ModelError:
        """A frame that is not the JSON the protocol promises."""
        return ModelError(
            self.provider.redact(f"{self._sender()} sent a stream Cairn could not read: {exc}"),
            backend=self.name,
            reason="other",
            retryable=True,
        )

    def _cut_short(self, stream: str, what: str, marker: str) -> ModelError:
        """The stream ended without its closing ``marker``: the connection dropped."""
        return ModelError(
            f"{stream} from {self.provider.where()} ended before the {what} was complete "
            f"(no {marker}): the connection dropped; try again",
            backend=self.name,
            reason="connection",
            retryable=True,
        )

    def _raise_sdk_error(self, sdk: Any, exc: Exception, *, answer_started: bool) -> NoReturn:
        """Raise what a person reads for ``exc``, raised while streaming with the anthropic
        or openai SDK (both generated by Stainless: the same exception classes), their HTTP
        client, or their stream reader (a ``ValueError`` for a frame that is not the JSON
        the protocol promises). SDK errors arrive wrapped or raw depending on where they
        happen (the body, an error body, the stream's tail), so both are handled."""
        import httpx2

        if isinstance(exc, sdk.APIStatusError):  # not chained: the SDK's text may quote the key
            raise self._status_error(self._facts(exc)) from None
        if isinstance(exc, sdk.APIError) and not isinstance(exc, sdk.APIConnectionError):
            raise self._stream_error(exc) from None  # an error object inside the 200 stream
        if isinstance(exc, sdk.APITimeoutError | httpx2.TimeoutException):
            raise self._timeout() from exc
        if isinstance(exc, sdk.APIConnectionError):
            raise self._dropped(exc.__cause__ or exc, answer_started=answer_started) from exc
        if isinstance(exc, httpx2.TransportError):
            raise self._dropped(exc, answer_started=answer_started) from exc
        if isinstance(exc, ValueError):
            raise self._unreadable(exc) from exc
        raise exc

    def _facts(self, exc: Any) -> ErrorFacts:
        """An SDK's error response in the one shape ``_status_error`` reads."""
        raise NotImplementedError

    def _stream_error(self, exc: Any) -> ModelError:
        """An SDK error that is neither a response nor a connection failure: an error
        object inside the 200 stream, for the SDKs that raise it apart."""
        return self._status_error(self._facts(exc))

    def _bad_arguments(self, tool: str, problem: str) -> ModelError:
        return ModelError(
            f"{self.name} sent arguments for tool {tool!r} that are not a JSON object "
            f"({problem}): try again, or make the tool's description clearer",
            backend=self.name,
            reason="other",
            retryable=True,
        )

    # --- error responses ------------------------------------------------------------------

    def _server(self) -> str:
        """How the server is named in an error text."""
        return self.name

    def _category(self, facts: ErrorFacts) -> Category:
        """What kind of failure this is, by HTTP status; vendors add their own codes."""
        status = facts.status
        if status == 401:
            return "key"
        if status == 403:
            return "forbidden"
        if status == 404:
            return "not_found"
        if status == 413 or self._too_long(facts):
            return "too_long"
        if status in self.bad_request_statuses:
            return "bad_request"
        if status == 429:
            return "used_up" if self._used_up(facts) else "rate_limited"
        if status in (408, 504):
            return "timeout"
        if status in self.overloaded_statuses:
            return "overloaded"
        if status >= 500:
            return "server_error"
        return "other"

    def _too_long(self, facts: ErrorFacts) -> bool:
        return facts.status in self.bad_request_statuses and bool(
            CONTEXT_TOO_LONG.search(facts.message)
        )

    def _used_up(self, facts: ErrorFacts) -> str | None:
        """For a 429 that waiting does not fix (a spend limit, a used-up quota): the text."""
        return None

    def _retry_after(self, facts: ErrorFacts) -> float | None:
        return retry_after_s(facts.headers)

    def _not_found_hint(self) -> str:
        if self.provider.base_url:
            return f" and base_url (requests went to {self.provider.where()})"
        return ""

    def _bad_request_hint(self, facts: ErrorFacts) -> str:
        return ""

    def _hint(self, category: Category, facts: ErrorFacts, retry_after: float | None) -> str:
        """The vendor's part of the text for ``category`` (a remedy, a wait)."""
        if category == "key":
            return self.key_hint
        if category == "forbidden":
            return self.forbidden_hint
        if category == "not_found":
            return self._not_found_hint()
        if category == "bad_request":
            return self._bad_request_hint(facts)
        if category == "used_up":
            return self._used_up(facts) or ""
        if category == "rate_limited" and retry_after is not None:
            return f"; it asked to wait {retry_after:g} s"
        if category == "overloaded":
            return self.overloaded_statuses[facts.status]
        return ""

    def _text(self, category: Category, facts: ErrorFacts, retry_after: float | None) -> str:
        """What the person reads for a failure of ``category``."""
        return _CATEGORIES[category][2].format(
            server=self._server(),
            said=facts.said,
            model=self.settings.model,
            hint=self._hint(category, facts, retry_after),
        )

    def _status_error(self, facts: ErrorFacts) -> ModelError:
        """Classify an error response (or an error inside the stream) and say what to do."""
        category = self._category(facts)
        reason, retryable, _text = _CATEGORIES[category]
        if category == "other":
            retryable = facts.status in self.retryable_other
        retry_after = self._retry_after(facts) if category == "rate_limited" else None
        text = self._text(category, facts, retry_after)
        if facts.headers is not None and self.honours_should_retry:
            # The API says outright when a retry is (not) worth it; obey, as the SDKs do.
            should_retry = facts.headers.get("x-should-retry")
            if should_retry in ("true", "false") and reason != "auth":
                retryable = should_retry == "true"
        if retryable and retry_after is None:
            retry_after = self._retry_after(facts)
        return ModelError(
            self.provider.redact(text),
            backend=self.name,
            status_code=facts.status_code,
            reason=reason,
            retryable=retryable,
            retry_after_s=retry_after,
        )
