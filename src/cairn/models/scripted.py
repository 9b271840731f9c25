"""The offline ``scripted`` backend: deterministic model turns from a script.

It makes every feature usable and testable with no key and no network: a test fire of a
scripted agent calls the same tools, writes the same run row and streams the same events
as a real model would. The format is documented in ``docs/scripted.md``; in short::

    {"turns": [
        {"text": "Looking it up.",
         "tool_calls": [{"name": "crm_lookup_order",
                         "arguments": {"order_id": "{{event.order_id}}"}}]},
        {"text": "Order {{event.order_id}}: {{results.-1}}"}
     ],
     "then": "stop"}

A list of turns or a single string is accepted as shorthand. Placeholders: ``{{event}}``,
``{{event.a.b}}``, ``{{results.N}}`` (Nth tool result of the run, negative from the end),
``{{tools}}`` (advertised names). An argument that is exactly one placeholder takes the
raw JSON value. A turn may also carry ``delay_s`` (sleep first: timeouts, cancellation),
``error`` (the backend raises: model failures; a string, or an object with ``message``,
``reason``, ``retryable``, ``retry_after_s`` and ``times``, the number of attempts that
fail before the turn plays), ``stop_reason`` and ``usage``.

Tokens are counted as one per four characters of what is sent (system, messages, tool
specs) and of what comes back, rounded up, so the same run always costs the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from cairn.domain.agents import ModelSettings
from cairn.domain.runs import Usage
from cairn.domain.tools import ToolSpec
from cairn.errors import InvalidScript, ModelError
from cairn.models.base import (
    Credentials,
    Message,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallRequest,
    TurnEnd,
)

DEFAULT_SCRIPT: dict[str, Any] = {"turns": [{"text": "Scripted reply: received {{event}}"}]}
_PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z_][\w.\-]*)\s*\}\}")
_TURN_KEYS = {"text", "tool_calls", "delay_s", "error", "stop_reason", "usage"}
_ERROR_KEYS = {"message", "reason", "retryable", "retry_after_s", "times"}


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    """One scripted tool call (arguments may hold placeholders)."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScriptedError:
    """A scripted model failure; ``times`` attempts fail (``None``: every attempt)."""

    message: str
    reason: str = "other"
    retryable: bool = False
    retry_after_s: float | None = None
    times: int | None = None


@dataclass(frozen=True, slots=True)
class ScriptedTurn:
    """One scripted model turn."""

    text: str = ""
    tool_calls: tuple[ScriptedCall, ...] = ()
    delay_s: float = 0.0
    error: ScriptedError | None = None
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Script:
    """A parsed script; ``then`` is ``stop`` (end quietly) or ``repeat_last`` when turns run out."""

    turns: tuple[ScriptedTurn, ...]
    then: str = "stop"


def parse_script(raw: Any) -> Script:
    """Validate a script (from model_settings or a file) and say exactly what is wrong."""
    if raw is None:
        raw = DEFAULT_SCRIPT
    if isinstance(raw, str):
        raw = {"turns": [{"text": raw}]}
    if isinstance(raw, list):
        raw = {"turns": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("turns"), list):
        raise InvalidScript("a script is an object with a 'turns' list (see docs/scripted.md)")
    then = raw.get("then", "stop")
    if then not in ("stop", "repeat_last"):
        raise InvalidScript(f"script 'then' must be 'stop' or 'repeat_last', not {then!r}")
    turns = []
    for index, turn in enumerate(raw["turns"]):
        if isinstance(turn, str):
            turn = {"text": turn}
        if not isinstance(turn, dict):
            raise InvalidScript(f"script turn {index} must be an object or a string")
        _check_keys(turn, _TURN_KEYS, f"script turn {index}")
        calls = []
        for call in turn.get("tool_calls") or []:
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                raise InvalidScript(f"script turn {index}: each tool call needs a 'name'")
            arguments = call.get("arguments") or {}
            if not isinstance(arguments, dict):
                raise InvalidScript(f"script turn {index}: 'arguments' must be an object")
            calls.append(ScriptedCall(call["name"], arguments))
        delay = turn.get("delay_s", 0.0)
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise InvalidScript(f"script turn {index}: 'delay_s' must be a number >= 0")
        usage = turn.get("usage") or {}
        if not isinstance(usage, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in usage.values()
        ):
            raise InvalidScript(f"script turn {index}: 'usage' values must be whole numbers >= 0")
        turns.append(
            ScriptedTurn(
                text=str(turn.get("text", "")),
                tool_calls=tuple(calls),
                delay_s=float(delay),
                error=_parse_error(turn.get("error"), index),
                stop_reason=turn.get("stop_reason"),
                usage=dict(usage),
            )
        )
    return Script(tuple(turns), then)


def _check_keys(raw: dict[str, Any], known: set[str], where: str) -> None:
    """Refuse a key the format does not have (a typo would otherwise be ignored)."""
    unknown = set(raw) - known
    if unknown:
        raise InvalidScript(
            f"{where} has unknown key {sorted(unknown)[0]!r}; known: {', '.join(sorted(known))}"
        )


def _parse_error(raw: Any, index: int) -> ScriptedError | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return ScriptedError(raw)
    if not isinstance(raw, dict) or not isinstance(raw.get("message"), str):
        raise InvalidScript(f"script turn {index}: 'error' is a string or an object with 'message'")
    _check_keys(raw, _ERROR_KEYS, f"script turn {index}: 'error'")
    times = raw.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise InvalidScript(f"script turn {index}: error 'times' must be a whole number >= 1")
    retry_after = raw.get("retry_after_s")
    if retry_after is not None and (not isinstance(retry_after, int | float) or retry_after < 0):
        raise InvalidScript(f"script turn {index}: error 'retry_after_s' must be a number >= 0")
    return ScriptedError(
        message=raw["message"],
        reason=str(raw.get("reason", "other")),
        retryable=bool(raw.get("retryable", False)),
        retry_after_s=retry_after,
        times=times,
    )


_PARSED: dict[int, tuple[Any, Any]] = {}


def _once(cache: dict[int, tuple[Any, Any]], item: Any, compute: Callable[[Any], Any]) -> Any:
    """``compute(item)``, once per object: an agent's settings hold the same script object
    for every fire, and a run's messages and specs repeat every turn. Keyed by identity,
    checked by identity (the entry keeps the object alive); results must be immutable."""
    hit = cache.get(id(item))
    if hit is None or hit[0] is not item:
        if len(cache) > 1024:
            cache.clear()
        hit = cache[id(item)] = (item, compute(item))
    return hit[1]


def count_tokens(text: str) -> int:
    """The scripted backend's deterministic token count: one per four characters, rounded up."""
    return (len(text) + 3) // 4


class ScriptedBackend:
    """Plays a script turn by turn; stateless between turns (the request carries the index)."""

    name = "scripted"

    def __init__(self, settings: ModelSettings, credentials: Credentials | None = None) -> None:
        self.script: Script = _once(_PARSED, settings.script, parse_script)
        self._failures: dict[int, int] = {}  # turn index -> attempts failed so far
        self._sizes: dict[int, tuple[Any, Any]] = {}

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Yield the scripted turn for ``request.turn`` (0-based)."""
        turn = self._turn_at(request.turn)
        if turn.delay_s:
            await anyio.sleep(turn.delay_s)
        error = turn.error
        failed = self._failures.get(request.turn, 0)
        if error is not None and (error.times is None or failed < error.times):
            self._failures[request.turn] = failed + 1
            raise ModelError(
                error.message,
                backend=self.name,
                reason=error.reason,  # type: ignore[arg-type]
                retryable=error.retryable,
                retry_after_s=error.retry_after_s,
            )
        scope = _Scope(request)
        text = scope.render_text(turn.text)
        for piece in chunk_text(text):
            yield TextDelta(piece)
        calls = [
            ToolCallRequest(
                call_id=f"call_{request.turn}_{index}",
                name=call.name,
                arguments=scope.render_value(call.arguments),
            )
            for index, call in enumerate(turn.tool_calls)
        ]
        for call in calls:
            yield call
        received = text + "".join(json.dumps(c.arguments, sort_keys=True) + c.name for c in calls)
        usage = Usage(
            tokens_in=turn.usage.get("tokens_in", (self._prompt_chars(request) + 3) // 4),
            tokens_out=turn.usage.get("tokens_out", count_tokens(received)),
            cache_read_tokens=turn.usage.get("cache_read_tokens", 0),
            cache_write_tokens=turn.usage.get("cache_write_tokens", 0),
        )
        stop = turn.stop_reason or ("tool_use" if calls else "end_turn")
        yield TurnEnd(stop, usage, model=request.settings.model)

    def _prompt_chars(self, request: ModelRequest) -> int:
        """Characters sent this turn (each message and spec measured once per run)."""
        total = len(request.system)
        for message in request.messages:
            total += _once(self._sizes, message, _message_chars)
        for spec in request.tools:
            total += _once(self._sizes, spec, _spec_chars)
        return total

    def _turn_at(self, index: int) -> ScriptedTurn:
        turns = self.script.turns
        if index < len(turns):
            return turns[index]
        if self.script.then == "repeat_last" and turns:
            return turns[-1]
        return ScriptedTurn()


CHUNK_CHARS = 24


def chunk_text(text: str) -> list[str]:
    """Split text into deltas of about ``CHUNK_CHARS`` characters, cut after a space, so it
    streams in several pieces as vendors' text does (a few words per delta)."""
    pieces: list[str] = []
    current = ""
    for word in re.split(r"(?<= )", text):
        current += word
        if len(current) >= CHUNK_CHARS:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


def _message_chars(message: Message) -> int:
    size = len(message.text)
    for call in message.tool_calls:
        size += len(call.name) + len(json.dumps(call.arguments, sort_keys=True))
    for result in message.tool_results:
        size += len(json.dumps(result.content, sort_keys=True, default=str))
    return size


def _spec_chars(spec: ToolSpec) -> int:
    return (
        len(spec.name) + len(spec.description) + len(json.dumps(spec.input_schema, sort_keys=True))
    )


class _Scope:
    """Resolves placeholders against the event payload and the run's tool results so far."""

    def __init__(self, request: ModelRequest) -> None:
        self.event = request.event_payload
        self.results: list[Any] = [
            result.content for message in request.messages for result in message.tool_results
        ]
        self.tools = ", ".join(spec.name for spec in request.tools)

    def lookup(self, path: str) -> Any:
        head, *rest = path.split(".")
        value: Any
        if head == "event":
            value = self.event
        elif head == "results":
            value = self.results
        elif head == "tools":
            return self.tools
        else:
            return "{{" + path + "}}"
        for step in rest:
            if isinstance(value, list) and step.lstrip("-").isdigit():
                index = int(step)
                value = value[index] if -len(value) <= index < len(value) else None
            elif isinstance(value, dict):
                value = value.get(step)
            else:
                value = None
        return value

    def render_text(self, template: str) -> str:
        def replace(match: re.Match[str]) -> str:
            value = self.lookup(match.group(1))
            if isinstance(value, str):
                return value
            return "" if value is None else json.dumps(value, sort_keys=True, default=str)

        return _PLACEHOLDER.sub(replace, template)

    def render_value(self, value: Any) -> Any:
        if isinstance(value, str):
            whole = _PLACEHOLDER.fullmatch(value.strip())
            if whole:
                return self.lookup(whole.group(1))
            return self.render_text(value)
        if isinstance(value, dict):
            return {k: self.render_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render_value(v) for v in value]
        return value


__all__ = ["Message", "ScriptedBackend", "count_tokens", "parse_script"]
