"""The Google backend: Gemini through the official ``google-genai`` SDK.

``GoogleProvider`` holds the key; the wire adapter below it keeps the guarantees of
``cairn.models._vendor``, and:

* Thought-summary parts are the model's reasoning, not its answer, and are left out.
  ``STOP`` is ``tool_use`` when the turn called functions (Gemini says ``STOP`` either
  way). ``MALFORMED_FUNCTION_CALL`` is a retryable error: the model wrote a call that
  cannot be run, and asking again usually fixes it.
* Tools are advertised as ``functionDeclarations`` with the tool's JSON Schema passed as
  is (``parameters_json_schema``), not squeezed into the SDK's OpenAPI subset. Gemini
  usually gives calls no id: the backend then makes one, ``gemini_call_{turn}_{index}``,
  the same on every attempt of a turn. Ids Gemini gave, and the ``thoughtSignature`` it
  attached to a call (Gemini 3 refuses a history that drops it), are remembered by this
  backend instance (one per run) and sent back with the call; results go back as
  ``functionResponse`` parts (``{"output": ...}`` or ``{"error": ...}``) in a user turn.
* Usage: thinking tokens are generated and billed as output, so ``tokens_out`` counts
  them (docs/ledger.md). When the SDK follows a ``continuation_token`` across requests it
  adds the requests up itself.
* The SDK's retries are off explicitly (``HttpRetryOptions(attempts=1)``: an unset option
  lets its aiohttp transport retry connection errors on its own). The wait Google asks for
  is the ``Retry-After`` header, else the body's ``RetryInfo.retryDelay``. The stream is
  read inside ``contextlib.aclosing`` and an HTTP client this backend owns.

Requests go to API version ``v1beta``, where the Gemini API documents function calling and
thought signatures (the SDK's own default is ``v1``), unless ``base_url`` itself ends in a
version (``.../v1``).
"""

from __future__ import annotations

import functools
import os
import re
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, cast
from urllib.parse import urlsplit, urlunsplit

from cairn.domain.runs import Usage
from cairn.domain.tools import ToolSpec
from cairn.errors import ModelError
from cairn.models._vendor import (
    Category,
    ErrorFacts,
    VendorBackend,
    VendorProvider,
    check_arguments,
    import_sdk,
    quote_body,
)
from cairn.models._vendor import retry_after_s as header_retry_after_s
from cairn.models.base import (
    Message,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallRequest,
    ToolResultMessage,
    TurnEnd,
)

if TYPE_CHECKING:
    from google import genai
    from google.genai import errors as genai_errors
    from google.genai import types

BACKEND = "google"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"
SYNTHETIC_ID_PREFIX = "gemini_call_"
KEY_HINT = "set GOOGLE_API_KEY (or GEMINI_API_KEY) or store a credential for 'google'"

_STOP_REASONS = {"STOP": "end_turn", "MAX_TOKENS": "max_tokens"}

# Error ``status`` names of google.rpc.Code, for an error whose HTTP status is not known
# (an error frame mid-stream carries both; a proxy's page carries neither).
_STATUS_CODES = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

# ErrorInfo reasons that mean the key itself is wrong (Gemini answers a bad key with 400).
_KEY_REASONS = {"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"}

_VERSION_SEGMENT = re.compile(r"^v\d+(?:(?:alpha|beta)\d*)?$")


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One trust store for every client, built as the SDK builds it (``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` when set, else httpx2's default). Loading one costs ~17 ms, and a
    client per turn would otherwise load three (its HTTP clients and its websocket setup)."""
    import httpx2

    cafile = os.environ.get("SSL_CERT_FILE")
    capath = os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    context: ssl.SSLContext = httpx2.create_ssl_context()
    return context


class GoogleProvider(VendorProvider):
    """Holds the API key and where to send requests; builds one SDK client per turn."""

    default_base_url = DEFAULT_BASE_URL
    base_url_env = "GOOGLE_GEMINI_BASE_URL"

    def __init__(self, api_key: str | None, *, base_url: str | None, timeout_s: float) -> None:
        super().__init__(api_key, base_url=base_url, timeout_s=timeout_s)
        self.base_url, self.api_version = split_version(base_url)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[genai.Client]:
        """A new SDK client over an ``httpx2`` client of our own, both closed on exit.

        Our own async client keeps the transport the same whatever else is installed (with
        aiohttp present the SDK would switch to it, with other exceptions) and lets closing
        it close any response still open. SDK retries are off; ``timeout`` (milliseconds)
        is what the SDK applies to every request, overriding any client default."""
        import_sdk(BACKEND, "google.genai", "google-genai")
        import httpx2
        from google import genai
        from google.genai import types

        context = _ssl_context()
        async with httpx2.AsyncClient(
            verify=context, timeout=self.timeout_s, follow_redirects=True
        ) as http:
            options = types.HttpOptions(
                base_url=self.base_url,
                api_version=self.api_version,
                timeout=max(1, round(self.timeout_s * 1000)),
                retry_options=types.HttpRetryOptions(attempts=1),
                httpx_async_client=http,
                client_args={"verify": context},
                async_client_args={"ssl": context},
            )
            client: genai.Client = genai.Client(
                api_key=self._api_key, vertexai=False, http_options=options
            )
            try:
                yield client
            finally:
                client.close()


def split_version(base_url: str | None) -> tuple[str | None, str]:
    """``(base_url, api_version)``: a base URL that ends in a version segment (``.../v1``,
    ``.../v1beta``) names the version to use and loses it, because the SDK appends the
    version itself; any other URL is used as given, with ``v1beta``."""
    if not base_url:
        return None, API_VERSION
    parts = urlsplit(base_url)
    head, _, last = parts.path.rstrip("/").rpartition("/")
    if _VERSION_SEGMENT.match(last):
        return urlunsplit(parts._replace(path=head or "/")), last
    return base_url, API_VERSION


@dataclass(frozen=True, slots=True)
class _SentCall:
    """What Gemini said about a call that Cairn must repeat when it sends the call back."""

    api_id: str | None
    signature: bytes | None


@dataclass(slots=True)
class _TurnState:
    """What one turn's chunks said so far. Usage and the finish reason are running values
    (the last chunk that carries one wins); calls and text accumulate."""

    received: bool = False
    finish_reason: str | None = None
    blocked: str | None = None
    usage_metadata: types.GenerateContentResponseUsageMetadata | None = None
    calls: list[types.Part] = field(default_factory=list)  # run once the stream ended well

    def take(self, chunk: types.GenerateContentResponse) -> list[str]:
        """Record one chunk; return its answer text, in order (thought parts left out)."""
        self.received = True
        if chunk.usage_metadata is not None:
            self.usage_metadata = chunk.usage_metadata
        feedback = chunk.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            self.blocked = _enum_name(feedback.block_reason)
        if not chunk.candidates:
            return []
        candidate = chunk.candidates[0]
        if candidate.finish_reason is not None:
            self.finish_reason = _enum_name(candidate.finish_reason)
        texts: list[str] = []
        parts = candidate.content.parts if candidate.content else None
        for part in parts or ():
            if part.function_call is not None:
                self.calls.append(part)
            elif part.text and not part.thought:
                texts.append(part.text)
        return texts


class GoogleBackend(VendorBackend):
    """Gemini over ``streamGenerateContent``; remembers the ids and thought signatures of
    the calls Gemini made in this run (one instance per run)."""

    name = BACKEND
    provider_class = GoogleProvider
    key_hint = KEY_HINT
    forbidden_hint = f" or the Gemini API; check the key and its project, or {KEY_HINT}"
    overloaded_statuses: ClassVar[Mapping[int, str]] = {503: "is overloaded or unavailable"}
    retryable_other = (409, 499)
    honours_should_retry = False
    provider: GoogleProvider

    @functools.cached_property
    def _sent_calls(self) -> dict[str, _SentCall]:
        """The calls Gemini made in this run, by Cairn's id (one backend instance per run)."""
        return {}

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """One ``streamGenerateContent`` call; raises ``ModelError`` on failure."""
        if not self.provider.has_key:
            raise self._no_key()
        import_sdk(BACKEND, "google.genai", "google-genai")
        import httpx2
        import pydantic
        from google.genai import errors

        contents = to_contents(request.messages, self._sent_calls)
        config = build_config(request)
        turn = _TurnState()
        response_model: str | None = None
        try:
            async with self.provider.client() as client:
                chunks = await client.aio.models.generate_content_stream(
                    model=request.settings.model, contents=contents, config=config
                )
                # An async generator at run time; closing it closes the HTTP response.
                generator = cast("AsyncGenerator[types.GenerateContentResponse, None]", chunks)
                async with aclosing(generator):
                    async for chunk in generator:
                        response_model = getattr(chunk, "model_version", None) or response_model
                        for text in turn.take(chunk):
                            yield TextDelta(text)
        except errors.APIError as exc:
            raise self._status_error(self._facts(exc)) from exc
        except httpx2.TimeoutException as exc:
            raise self._timeout() from exc
        except httpx2.TransportError as exc:
            raise self._dropped(exc, answer_started=turn.received) from exc
        except (errors.UnknownApiResponseError, pydantic.ValidationError) as exc:
            raise self._unreadable(exc) from exc
        if turn.blocked is not None:
            raise ModelError(
                f"google blocked the prompt (blockReason {turn.blocked}) for model "
                f"{self.settings.model!r}: change the system prompt or the event payload",
                backend=BACKEND,
                reason="bad_request",
            )
        finish_reason = turn.finish_reason
        if finish_reason is None:
            raise self._cut_short("google's stream", "answer", "finishReason")
        if finish_reason == "MALFORMED_FUNCTION_CALL":
            raise ModelError(
                f"model {self.settings.model!r} wrote a function call that cannot be run "
                "(finishReason MALFORMED_FUNCTION_CALL): try again, or make the tools' "
                "descriptions and schemas simpler",
                backend=BACKEND,
                reason="other",
                retryable=True,
            )
        calls = self._calls(turn.calls, request.turn)
        for call in calls:
            yield call
        stop = _STOP_REASONS.get(finish_reason, "other")
        if stop == "end_turn" and calls:
            stop = "tool_use"
        yield TurnEnd(stop, usage_from(turn.usage_metadata), model=response_model)

    def _calls(self, parts: list[types.Part], turn: int) -> list[ToolCallRequest]:
        """The turn's calls, with ids (Gemini's, or made here) and arguments checked."""
        calls = []
        for index, part in enumerate(parts):
            call = cast("types.FunctionCall", part.function_call)
            name = call.name or ""
            args, problem = check_arguments(call.args)
            if problem is not None:
                raise self._bad_arguments(name, problem)
            call_id = call.id or f"{SYNTHETIC_ID_PREFIX}{turn}_{index}"
            self._sent_calls[call_id] = _SentCall(call.id, part.thought_signature)
            calls.append(ToolCallRequest(call_id, name, args))
        return calls

    # --- errors ------------------------------------------------------------------------

    def _facts(self, exc: genai_errors.APIError) -> ErrorFacts:
        """An error response, or an error frame mid-stream (under the stream's HTTP 200),
        with the status from its code, else from its ``status`` name."""
        http_status = getattr(exc.response, "status_code", None)
        in_stream = http_status == 200
        status_name = str(exc.status or "")
        code = exc.code if isinstance(exc.code, int) and exc.code >= 400 else None
        status = code or _STATUS_CODES.get(status_name, 500)
        api_message = quote_body(exc.message) or quote_body(exc.details) or "no message"
        where = "an error frame mid-stream, " if in_stream else "HTTP "
        return ErrorFacts(
            status=status,
            said=f"{where}{status}{f' {status_name}' if status_name else ''}: {api_message}",
            message=api_message,
            headers=None if in_stream else getattr(exc.response, "headers", None),
            status_code=status,
            type=status_name,
            details=_error_details(exc.details),
        )

    def _category(self, facts: ErrorFacts) -> Category:
        """Gemini answers a bad key with 400 and an ``ErrorInfo`` reason saying so."""
        reasons = {
            str(d.get("reason", "")) for d in facts.details if "ErrorInfo" in str(d.get("@type"))
        }
        if reasons & _KEY_REASONS:
            return "key"
        return super()._category(facts)

    def _used_up(self, facts: ErrorFacts) -> str | None:
        daily = _daily_quota(facts.details)
        if daily is None:
            return None
        return (
            f"google refused the request: the daily quota {daily} is used up ({facts.said}); "
            "wait for it to reset or raise the quota of the key's project"
        )

    def _retry_after(self, facts: ErrorFacts) -> float | None:
        return retry_after_s(facts.headers, facts.details)


# --- wire adapter: request ------------------------------------------------------------


def build_config(request: ModelRequest) -> types.GenerateContentConfig:
    """The generation config for one turn: system instruction, tools, sampling, and the
    SDK's automatic function calling off (Cairn runs the tools and records each call)."""
    from google.genai import types

    settings = request.settings
    config = types.GenerateContentConfig(
        max_output_tokens=settings.max_tokens,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    if request.system:
        config.system_instruction = request.system
    if settings.temperature is not None:
        config.temperature = settings.temperature
    if request.tools:
        config.tools = [
            types.Tool(function_declarations=[to_declaration(s) for s in request.tools])
        ]
    result: types.GenerateContentConfig = config
    return result


def to_declaration(spec: ToolSpec) -> types.FunctionDeclaration:
    """A tool as advertised to Gemini: its JSON Schema as given (an object schema, as the
    API requires of parameters), not converted to the SDK's OpenAPI ``Schema`` subset."""
    from google.genai import types

    schema: dict[str, Any] = {"type": "object", **spec.input_schema}
    declaration: types.FunctionDeclaration = types.FunctionDeclaration(
        name=spec.name,
        description=spec.description or None,
        parameters_json_schema=schema,
    )
    return declaration


def to_contents(
    messages: list[Message], sent_calls: dict[str, _SentCall] | None = None
) -> list[types.Content]:
    """Cairn's conversation as Gemini contents: assistant turns are ``model`` contents with
    text and ``functionCall`` parts (each with the id and thought signature Gemini gave it,
    from ``sent_calls``), tool results a ``user`` content of ``functionResponse`` parts.
    An empty assistant turn is left out: the API refuses a content without parts."""
    from google.genai import types

    sent_calls = sent_calls or {}
    contents: list[types.Content] = []
    for message in messages:
        if message.role == "user":
            contents.append(types.Content(role="user", parts=[types.Part(text=message.text)]))
        elif message.role == "assistant":
            parts = []
            if message.text:
                parts.append(types.Part(text=message.text))
            for call in message.tool_calls:
                sent = _sent(call.call_id, sent_calls)
                parts.append(
                    types.Part(
                        function_call=types.FunctionCall(
                            id=sent.api_id, name=call.name, args=call.arguments
                        ),
                        thought_signature=sent.signature,
                    )
                )
            if parts:
                contents.append(types.Content(role="model", parts=parts))
        elif message.tool_results:
            contents.append(
                types.Content(
                    role="user",
                    parts=[
                        to_function_response(result, sent_calls) for result in message.tool_results
                    ],
                )
            )
    return contents


def to_function_response(
    result: ToolResultMessage, sent_calls: dict[str, _SentCall] | None = None
) -> types.Part:
    """One tool's outcome, in the keys Gemini documents: ``output`` for a result (any JSON
    value, kept structured), ``error`` for a failure."""
    from google.genai import types

    key = "error" if result.is_error else "output"
    part: types.Part = types.Part(
        function_response=types.FunctionResponse(
            id=_sent(result.call_id, sent_calls).api_id,
            name=result.name,
            response={key: result.content},
        )
    )
    return part


def _sent(call_id: str, sent_calls: dict[str, _SentCall] | None) -> _SentCall:
    """What to repeat of a call; for one this backend instance did not see, no id if it was
    made up here (Gemini never saw it), else the id as it is."""
    sent = (sent_calls or {}).get(call_id)
    if sent is not None:
        return sent
    return _SentCall(None if call_id.startswith(SYNTHETIC_ID_PREFIX) else call_id, None)


# --- wire adapter: response -----------------------------------------------------------


def usage_from(metadata: types.GenerateContentResponseUsageMetadata | None) -> Usage:
    """Cairn's one rule for cached prompt tokens, from Gemini's ``usageMetadata`` (see the
    module docstring): every prompt token once in ``tokens_in``, the cached share repeated
    as ``cache_read_tokens``, thinking counted as output."""
    if metadata is None:
        return Usage()
    prompt = metadata.prompt_token_count or 0
    tool_prompt = metadata.tool_use_prompt_token_count or 0
    return Usage(
        tokens_in=prompt + tool_prompt,
        tokens_out=(metadata.candidates_token_count or 0) + (metadata.thoughts_token_count or 0),
        cache_read_tokens=metadata.cached_content_token_count or 0,
        cache_write_tokens=0,
    )


def _enum_name(value: Any) -> str:
    """An SDK enum (or a plain string for a value the SDK does not know) as its name."""
    return str(getattr(value, "value", value))


def _error_details(body: Any) -> list[dict[str, Any]]:
    """The ``details`` list of a Google error body (``{"error": {..., "details": [...]}}``)."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        return []
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _daily_quota(details: list[dict[str, Any]]) -> str | None:
    """The id of a per-day quota that a 429 says is used up: waiting minutes will not help."""
    for detail in details:
        if "QuotaFailure" not in str(detail.get("@type")):
            continue
        for violation in detail.get("violations") or []:
            quota_id = str(violation.get("quotaId", "")) if isinstance(violation, dict) else ""
            if "PerDay" in quota_id:
                return quota_id
    return None


def retry_after_s(headers: Any, details: list[dict[str, Any]] | None = None) -> float | None:
    """Seconds Google asked us to wait: the ``Retry-After`` header (seconds or an HTTP
    date), else ``RetryInfo.retryDelay`` in the error body (a duration such as ``"7s"`` or
    ``"1.5s"``); ``None`` when neither is there or readable."""
    from_header = header_retry_after_s(headers)
    if from_header is not None:
        return from_header
    for detail in details or []:
        if "RetryInfo" in str(detail.get("@type")):
            delay = str(detail.get("retryDelay", ""))
            match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)s\s*", delay)
            if match:
                return float(match.group(1))
    return None


__all__ = [
    "GoogleBackend",
    "GoogleProvider",
    "build_config",
    "retry_after_s",
    "split_version",
    "to_contents",
    "to_declaration",
    "usage_from",
]
