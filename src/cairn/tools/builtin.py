"""Tools that ship with Cairn and always resolve: a clock, a guarded HTTP client, JSON and
text helpers. They exist so that a fresh install has an agent that can *do* something,
and so an operator can tell "the runtime works" apart from "my MCP server is down".

``http_request`` reaches only hosts listed in ``CAIRN_HTTP_ALLOWED_HOSTS`` (comma-separated;
empty by default): an agent that can fetch any URL is a data-exfiltration path.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cairn.domain.sources import DataSource
from cairn.domain.tools import ToolSpec
from cairn.tools.functions import FunctionSource, ToolCallError

BUILTIN_SOURCE_ID = "builtin"

_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "clock_now",
        "Current date and time, ISO 8601, in the given IANA time zone (default UTC).",
        {
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "e.g. Europe/Paris"}},
        },
    ),
    ToolSpec(
        "http_request",
        "Make an HTTP request to an allowed host; returns status, headers and body (truncated).",
        {
            "type": "object",
            "properties": {
                "url": {"type": "string"},
                "method": {"type": "string", "description": "GET, POST, PUT, PATCH or DELETE"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "body": {"type": "string"},
            },
            "required": ["url"],
        },
    ),
    ToolSpec(
        "json_extract",
        "Pick a value out of a JSON document by a dotted path such as 'items.0.title'.",
        {
            "type": "object",
            "properties": {"document": {}, "path": {"type": "string"}},
            "required": ["document", "path"],
        },
    ),
    ToolSpec(
        "regex_find",
        "Find every match of a regular expression in a text; returns the matches.",
        {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "pattern": {"type": "string"},
                "max_matches": {"type": "integer", "minimum": 1, "maximum": 1000},
            },
            "required": ["text", "pattern"],
        },
    ),
)


class BuiltinSource(FunctionSource):
    """The always-resolvable ``builtin`` source."""

    kind = "builtin"
    specs = _SPECS

    def check(self, name: str, arguments: dict[str, Any]) -> None:
        """Argument problems come back as the call's error, for the model to fix."""
        problem = _argument_problem(name, arguments)
        if problem is not None:
            raise ToolCallError(problem)

    async def _clock_now(self, arguments: dict[str, Any]) -> str:
        zone_name = arguments.get("timezone") or "UTC"
        try:
            zone = UTC if zone_name == "UTC" else ZoneInfo(str(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            raise ToolCallError(f"unknown time zone {zone_name!r}") from None
        return datetime.now(zone).isoformat(timespec="seconds")

    async def _http_request(self, arguments: dict[str, Any]) -> dict[str, Any]:
        url = str(arguments.get("url", ""))
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ToolCallError(f"not an http(s) URL: {url!r}")
        allowed = self._context.http_allowed_hosts
        if parts.hostname not in allowed:
            raise ToolCallError(
                f"host {parts.hostname!r} is not allowed; allowed hosts: "
                f"{', '.join(allowed) or 'none'} (set CAIRN_HTTP_ALLOWED_HOSTS)",
                kind="host_not_allowed",
            )
        import httpx

        method = str(arguments.get("method") or "GET").upper()
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise ToolCallError(f"method {method!r} is not one of GET, POST, PUT, PATCH, DELETE")
        headers = {str(k): str(v) for k, v in (arguments.get("headers") or {}).items()}
        limit = self._context.http_max_response_bytes
        try:
            async with (
                httpx.AsyncClient(timeout=self._context.http_timeout_s) as client,
                client.stream(method, url, headers=headers, content=arguments.get("body")) as resp,
            ):
                body = b""
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        break
        except httpx.HTTPError as exc:
            raise ToolCallError(f"{method} {url} failed: {exc!s}", kind="tool_error") from None
        return {
            "status": resp.status_code,
            "headers": {"content-type": resp.headers.get("content-type", "")},
            "body": body[:limit].decode("utf-8", "replace"),
            "truncated": len(body) > limit,
        }

    async def _json_extract(self, arguments: dict[str, Any]) -> Any:
        document = arguments.get("document")
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except json.JSONDecodeError as exc:
                raise ToolCallError(f"document is not valid JSON: {exc.msg}") from None
        value = document
        path = str(arguments.get("path", ""))
        for step in filter(None, path.split(".")):
            if isinstance(value, list) and step.lstrip("-").isdigit():
                index = int(step)
                if not -len(value) <= index < len(value):
                    raise ToolCallError(f"index {index} is out of range at {step!r} in {path!r}")
                value = value[index]
            elif isinstance(value, dict) and step in value:
                value = value[step]
            else:
                raise ToolCallError(f"path {path!r} has no {step!r}")
        return value

    async def _regex_find(self, arguments: dict[str, Any]) -> list[str]:
        try:
            pattern = re.compile(str(arguments.get("pattern", "")))
        except re.error as exc:
            raise ToolCallError(f"invalid pattern: {exc}") from None
        limit = int(arguments.get("max_matches") or 100)
        matches: list[str] = []
        for match in pattern.finditer(str(arguments.get("text", ""))):
            matches.append(match.group(0))
            if len(matches) >= limit:
                break
        return matches


_VALIDATORS: dict[str, Any] = {}  # tool name -> compiled validator (building one is slow)


def _argument_problem(name: str, arguments: dict[str, Any]) -> str | None:
    """Check arguments against the tool's JSON Schema, so the model gets a precise error to
    fix instead of the tool crashing on a value of the wrong type."""
    validator = _VALIDATORS.get(name)
    if validator is None:
        from jsonschema import Draft202012Validator

        spec = next(s for s in _SPECS if s.name == name)
        validator = _VALIDATORS[name] = Draft202012Validator(spec.input_schema)
    error = next(iter(validator.iter_errors(arguments)), None)
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "arguments"
    return f"invalid arguments for {name}: {where}: {error.message}"


def builtin_source_record(sandbox_id: str) -> DataSource:
    """The virtual record of the builtin source, present in every sandbox without being stored."""
    return DataSource(
        source_id=BUILTIN_SOURCE_ID,
        sandbox_id=sandbox_id,
        kind="builtin",
        label="builtin",
        config={},
    )
