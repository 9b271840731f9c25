"""The outermost wrapper of every source: what a tool returns is checked and redacted
before the runner records it or the model sees it.

A tool result is JSON from outside (an MCP server, an integration's API); it keeps to the
intake limits of ``cairn.domain.limits`` or the call becomes an error naming the limit, and
a result too long is cut, saying so. Any known secret of the source (its token, header
value, stdio environment values, a token in its URL) is replaced by ``***`` wherever it
appears in a result or an error, so a server that echoes its credentials gets them stored
nowhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from cairn.domain.limits import MAX_TOOL_RESULT_CHARS, check_value
from cairn.errors import InvalidJSON
from cairn.tools.base import ToolOutput, ToolSource
from cairn.tools.wrappers import _Wrapper

REDACTED = "***"
MIN_SECRET_CHARS = 4
"""Shorter values are not redacted (replacing every "1" of a result helps nobody)."""


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` with every secret replaced by ``***``, in strings at any depth (and keys)."""
    known = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
    if not known:
        return value

    def text(item: str) -> str:
        for secret in known:
            if secret in item:
                item = item.replace(secret, REDACTED)
        return item

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, dict):
            return {text(str(k)): walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(value)


class GuardedSource(_Wrapper):
    """Checks and redacts every result of ``inner`` (see the module docstring)."""

    def __init__(self, inner: ToolSource, secrets: Iterable[str]) -> None:
        super().__init__(inner)
        self.secrets = [s for s in secrets if isinstance(s, str)]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        output = await self.inner.call_tool(name, arguments)
        if not isinstance(output, ToolOutput):  # a plugin bug: the runner reports it as one
            return output
        error = redact(output.error, self.secrets) if output.error else output.error
        if output.result is None:
            return ToolOutput(result=None, error=error, error_kind=output.error_kind)
        try:
            check_value(output.result, f"the result of {name!r}")
        except InvalidJSON as refused:
            return ToolOutput(error=f"{refused}; the result was dropped", error_kind="tool_error")
        result = redact(output.result, self.secrets)
        size = len(json.dumps(result, default=str))
        if size > MAX_TOOL_RESULT_CHARS:
            shown = json.dumps(result, default=str)[:MAX_TOOL_RESULT_CHARS]
            result = {
                "truncated": f"the result was {size:,} characters; the first "
                f"{MAX_TOOL_RESULT_CHARS:,} are kept",
                "text": shown,
            }
        return ToolOutput(result=result, error=error, error_kind=output.error_kind)
