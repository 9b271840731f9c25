"""The ``user_mcp`` tool source: a user's own Model Context Protocol server.

A source's ``config`` says how to reach the server, its ``secret`` holds what must not be
shown::

    config                                        secret
    transport: "stdio" | "http"                   token: bearer token / custom header value
    command, args, cwd     (stdio)                env:NAME: environment of a stdio server
    url                    (http, streamable HTTP)
    auth: "none" | "bearer" | "header"
    header_name            (auth = header)

``McpSource`` is a thin adapter over the ``mcp`` SDK's ``Client``: it lists the server's
tools under their own names and calls them. Namespacing, per-source allowed tools and
call caps are wrappers (``cairn.tools.wrappers``); timeouts belong to the caller.

Connecting fails with ``SourceUnavailable`` and a reason from the trace vocabulary:
``unreachable`` (no such command, connection refused, DNS, a server that exits before
the handshake), ``auth_refused`` (HTTP 401/403), ``timeout`` (an HTTP timeout of the
client itself) or ``error`` (bad config, anything else). Messages are one line, for
people, and never carry a secret value: every message is passed through a redactor.

The SDK client's task groups live in a task the source owns, not the caller's: a caller
may bound ``__aenter__`` + ``list_tools`` with ``fail_after`` and exit the source later,
outside that scope, and a server that dies mid-run fails its calls without cancelling
the caller.

A stdio server's stderr goes to a temporary file, not the terminal; its last line is
quoted when the server dies before it is connected. The SDK stops a stdio server the way
the MCP spec says (close stdin, wait 2 s, SIGTERM, wait 2 s, SIGKILL), shielded from
cancellation, so a timed-out or cancelled source leaves no child process behind.

A source kept warm by the session pool (``cairn.tools.pool``) is *watched*: the pool sets
``on_lost`` (called once when the server's stream ends or a call finds the connection
gone, e.g. a stdio server killed from outside) and ``on_tools_changed`` (called on
``notifications/tools/list_changed``, from a ``subscriptions/listen`` stream on servers
that speak the 2026 protocol, or as a plain notification on older ones).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass, field
from typing import Any, Final, TextIO, cast, get_args
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel
import httpx2
import mcp_types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from cairn import __version__
from cairn.domain.sources import AuthMode, DataSource, Transport
from cairn.domain.tools import ToolSpec
from cairn.domain.trace import SkipReason
from cairn.text import bare_url, clip, plural
from cairn.tools.base import SourceUnavailable, ToolContext, ToolOutput
from cairn.tools.guard import redact

logger = logging.getLogger(__name__)

TRANSPORTS: Final = get_args(Transport)
AUTH_MODES: Final = get_args(AuthMode)
ENV_SECRET_PREFIX: Final = "env:"
"""Secret keys ``env:NAME`` become environment variable ``NAME`` of a stdio server."""

_MAX_TOOL_PAGES: Final = 100  # a server whose cursor never ends cannot hang a listing
_STDERR_TAIL_BYTES: Final = 4096
_MESSAGE_MAX_CHARS: Final = 300
_CLOSE_GRACE_S: Final = 5.0  # then closing is forced (a stdio server still gets the spec's stop)
_SDK_STOP_S: Final = 2.2
"""How long the SDK's forced stop of a stdio server may take (stdin closed, 2 s, SIGTERM)."""
_HEALTH_STOP_RESERVE_S: Final = 2.5
"""The part of a health check's limit kept for stopping the server."""
_HTTP_READ_TIMEOUT_S: Final = 300.0  # the SDK's default: a tool call may stream for long
_CONNECTION_CLOSED: Final = mcp_types.CONNECTION_CLOSED

_Transport = AbstractAsyncContextManager[Any]
"""What ``mcp.Client`` accepts as a transport: a context manager of (read, write) streams."""


@dataclass(frozen=True, slots=True)
class HealthResult:
    """The outcome of ``check_health``: whether ``tools/list`` answered, and if not, why.

    ``reason`` is a trace skip reason (``None`` when ``ok``); ``message`` is one line for
    people; ``tool_names`` are the server's raw names, in its order.
    """

    ok: bool
    reason: SkipReason | None
    message: str
    tool_names: list[str] = field(default_factory=list)
    duration_ms: float = 0.0


@dataclass(slots=True)
class _Connection:
    """The task that owns one open MCP client, and how to talk to it."""

    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    ready: anyio.Event = field(default_factory=anyio.Event)
    stop: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)
    task: asyncio.Task[None] | None = None


class McpSource:
    """A ``user_mcp`` data source as a ``ToolSource``, built by ``McpSource(source, context)``.

    ``async with`` connects and completes the MCP handshake; it raises ``SourceUnavailable``
    when the server cannot be used, having already released everything it started (the
    caller need not, and must not, call ``__aexit__`` then). ``list_tools`` raises
    ``SourceUnavailable`` too; ``call_tool`` never raises for the server's sake. The SDK
    client lives in an asyncio task of its own (see the module docstring).
    """

    kind = "user_mcp"
    noun = "MCP source"  # how messages name the source's kind

    def __init__(self, source: DataSource, context: ToolContext) -> None:
        self.source_id = source.source_id
        self.label = source.label
        self._config = dict(source.config)
        self._secret = dict(source.secret)
        self._context = context
        self._connection: _Connection | None = None
        self._client: Client | None = None
        self._failure: SourceUnavailable | None = None
        self._stderr: TextIO | None = None
        self._http_statuses: list[int] = []
        self._output_schemas: dict[str, dict[str, Any] | None] | None = None
        self.on_lost: Callable[[str], None] | None = None
        self.on_tools_changed: Callable[[], None] | None = None

    async def __aenter__(self) -> McpSource:
        if self._connection is not None:
            raise RuntimeError(f"{self.noun} {self.label!r} is already open")
        self._http_statuses.clear()
        self._output_schemas = None
        self._failure = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("McpSource needs an asyncio event loop (anyio's default)") from None
        connection = self._connection = _Connection()
        # A reference is kept so the task cannot be garbage-collected while it runs.
        connection.task = loop.create_task(self._hold(connection), name=f"MCP {self.label}")
        try:
            await connection.ready.wait()
        except BaseException:  # cancelled (a deadline): stop connecting, leave nothing behind
            connection.scope.cancel()
            await self._wait_closed(connection, _CLOSE_GRACE_S)
            raise
        if self._failure is not None or self._client is None:
            await self._wait_closed(connection, _CLOSE_GRACE_S)
            raise self._failure or SourceUnavailable("error", f"{self.label}: connection lost")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self, *, grace_s: float | None = None) -> None:
        """Close the session: the server gets ``grace_s`` (default: the usual grace) to stop
        by itself before the close is forced."""
        connection = self._connection
        if connection is not None:
            connection.stop.set()
            await self._wait_closed(connection, _CLOSE_GRACE_S if grace_s is None else grace_s)

    async def _wait_closed(self, connection: _Connection, grace_s: float) -> None:
        """Wait, shielded, for the owner task to finish; hurry it if it dawdles."""
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(grace_s):
                await connection.done.wait()
            if not connection.done.is_set():
                connection.scope.cancel()  # the SDK still stops a stdio server, shielded
                await connection.done.wait()
        self._connection = None

    async def _hold(self, connection: _Connection) -> None:
        """Owner task: open the client, report through ``ready``, keep it open until stopped."""
        ready = connection.ready
        try:
            with self._stderr_capture(), connection.scope:
                try:
                    async with AsyncExitStack() as stack:
                        transport = await self._transport(stack)
                        if self.on_lost is not None:
                            transport = _watch_end(transport, self._lost)
                        client = Client(
                            transport,
                            cache=None,  # a listing must ask the server: it is the health check
                            client_info=mcp_types.Implementation(name="cairn", version=__version__),
                            message_handler=self._on_message if self.on_tools_changed else None,
                        )
                        await stack.enter_async_context(client)
                        self._client = client
                        ready.set()
                        if self.on_tools_changed is None:
                            await connection.stop.wait()
                        else:
                            async with anyio.create_task_group() as watchers:
                                watchers.start_soon(self._listen_for_changes, client)
                                await connection.stop.wait()
                                watchers.cancel_scope.cancel()
                except Exception as exc:
                    if ready.is_set():  # the server went away mid-run, or closing failed
                        logger.debug(
                            "MCP source %s closed with an error", self.label, exc_info=True
                        )
                    else:  # classified here, while the server's stderr is still readable
                        self._failure = self._unavailable(exc)
        finally:
            self._client = None
            ready.set()
            connection.done.set()

    # -- watching (warm sessions) --------------------------------------------------------

    def _lost(self, why: str) -> None:
        """The connection ended: tell the pool once, unless we are the ones closing it."""
        connection, on_lost = self._connection, self.on_lost
        if connection is None or connection.stop.is_set() or not connection.ready.is_set():
            return
        self.on_lost = None
        if on_lost is not None:
            on_lost(self._redact(f"{self.label}: {why}{self._stderr_said()}"))

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification) and self.on_tools_changed:
            self.on_tools_changed()
        await anyio.lowlevel.checkpoint()

    async def _listen_for_changes(self, client: Client) -> None:
        """Follow ``tools/list_changed`` on a 2026-protocol server (older ones notify)."""
        try:
            async with client.listen(tools_list_changed=True) as changes:
                async for _event in changes:
                    if self.on_tools_changed is not None:
                        self.on_tools_changed()
        except Exception:  # not supported, refused, or the connection went: nothing to follow
            logger.debug("MCP source %s: no tools/list_changed stream", self.label, exc_info=True)

    @contextmanager
    def _stderr_capture(self) -> Iterator[None]:
        """A temporary file for a stdio server's stderr, kept for the ``_hold`` lifetime."""
        if self._config.get("transport") != "stdio":
            yield
            return
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as stderr:
            self._stderr = cast(TextIO, stderr)  # typeshed says IO[str]; it is a TextIOWrapper
            try:
                yield
            finally:
                self._stderr = None

    async def list_tools(self) -> list[ToolSpec]:
        """The server's tools under their own names (every page of ``tools/list``).

        Raises ``SourceUnavailable`` when the listing fails (e.g. the token was revoked).
        """
        client = self._require_client()
        self._http_statuses.clear()
        specs: list[ToolSpec] = []
        schemas: dict[str, dict[str, Any] | None] = {}
        cursor: str | None = None
        try:
            for _ in range(_MAX_TOOL_PAGES):
                page = await client.list_tools(cursor=cursor)
                for tool in page.tools:
                    description = tool.description or tool.title or ""
                    specs.append(ToolSpec(tool.name, description, dict(tool.input_schema)))
                    schemas[tool.name] = tool.output_schema
                cursor = page.next_cursor
                if cursor is None:
                    break
        except Exception as exc:
            raise self._unavailable(exc, during="tools/list") from exc
        self._output_schemas = schemas
        return specs

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        """Call tool ``name``; the server's errors come back in ``ToolOutput.error``.

        The result is the structured content when the server gives one (unwrapped from
        the ``{"result": ...}`` envelope the SDK puts around plain return values), else
        the text of the content blocks joined by newlines.
        """
        client = self._client
        if client is None:
            return ToolOutput(
                error=f"{self.noun} {self.label!r} is not connected", error_kind="not_connected"
            )
        try:
            if self._output_schemas is None:  # called before any listing: unwrapping needs one
                await self.list_tools()
            result = await client.call_tool(name, arguments)
        except Exception as exc:  # the server is foreign code: its failures are the call's
            logger.debug("MCP tool %s of %s failed", name, self.label, exc_info=True)
            if _connection_gone(exc):
                self._lost(f"the connection was lost during a call to {name}")
            return ToolOutput(
                error=self._redact(f"{name} failed: {_describe(exc)}"), error_kind="server_lost"
            )
        if result.is_error:
            text = _content_text(result.content)
            return ToolOutput(
                error=text or f"{name} reported an error without a message",
                error_kind="tool_error",
            )
        if result.structured_content is not None:
            return ToolOutput(result=self._unwrap(name, result.structured_content))
        return ToolOutput(result=_content_text(result.content))

    # -- connecting ---------------------------------------------------------------------

    async def _transport(self, stack: AsyncExitStack) -> _Transport:
        """The SDK transport for this config; resources it needs are entered on ``stack``."""
        transport = self._config.get("transport")
        if transport == "stdio":
            return self._stdio_transport()
        if transport == "http":
            return await self._http_transport(stack)
        raise self._config_error(
            f"transport is {transport!r}; it must be one of {', '.join(TRANSPORTS)}"
        )

    def _stdio_transport(self) -> _Transport:
        command = self._config.get("command")
        args = self._config.get("args", [])
        cwd = self._config.get("cwd")
        if not isinstance(command, str) or not command:
            raise self._config_error("a stdio source needs a command")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise self._config_error("args must be a list of strings")
        if cwd is not None and not (isinstance(cwd, str) and os.path.isdir(cwd)):
            raise SourceUnavailable(
                "unreachable",
                self._redact(f"{self.label}: working directory {cwd!r} does not exist"),
            )
        env = {
            key.removeprefix(ENV_SECRET_PREFIX): value
            for key, value in self._secret.items()
            if key.startswith(ENV_SECRET_PREFIX)
        }
        assert self._stderr is not None, "_hold opens the stderr capture first"
        params = StdioServerParameters(command=command, args=args, env=env or None, cwd=cwd)
        return stdio_client(params, errlog=self._stderr)

    async def _http_transport(self, stack: AsyncExitStack) -> _Transport:
        url = self._secret.get("url") or self._config.get("url")  # query tokens are secret
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise self._config_error(f"url {url!r} is not an http:// or https:// URL")
        http = httpx2.AsyncClient(
            headers=self._auth_headers(),
            timeout=httpx2.Timeout(self._context.http_timeout_s, read=_HTTP_READ_TIMEOUT_S),
            event_hooks={"response": [self._record_status]},
        )
        await stack.enter_async_context(http)
        return streamable_http_client(url, http_client=http)

    def _auth_headers(self) -> dict[str, str]:
        auth = self._config.get("auth", "none")
        if auth == "none":
            return {}
        if auth not in AUTH_MODES:
            raise self._config_error(f"auth is {auth!r}; it must be one of {', '.join(AUTH_MODES)}")
        token = self._secret.get("token")
        if not token:
            raise self._config_error(f"auth is {auth} but no token is stored: set the token")
        if auth == "bearer":
            return {"Authorization": f"Bearer {token}"}
        header_name = self._config.get("header_name")
        if not isinstance(header_name, str) or not header_name:
            raise self._config_error("auth is header but header_name is not set")
        return {header_name: token}

    async def _record_status(self, response: httpx2.Response) -> None:
        # Only message POSTs: many servers answer the optional GET stream with 405.
        if response.status_code >= 400 and response.request.method == "POST":
            self._http_statuses.append(response.status_code)

    def _require_client(self) -> Client:
        if self._client is None:
            raise SourceUnavailable("error", f"{self.label}: {self.noun} used before it was opened")
        return self._client

    # -- errors -------------------------------------------------------------------------

    def _config_error(self, problem: str) -> SourceUnavailable:
        return SourceUnavailable("error", self._redact(f"{self.label}: {problem}"))

    def _unavailable(
        self, exc: BaseException, during: str = "the MCP handshake"
    ) -> SourceUnavailable:
        """Classify a failure to connect or list into a skip reason and a one-line message."""
        leaves = list(_leaves(exc))
        for leaf in leaves:
            if isinstance(leaf, SourceUnavailable):
                return leaf
        reason, message = self._classify(leaves, during)
        return SourceUnavailable(reason, self._redact(f"{self.label}: {message}"))

    def _classify(self, leaves: list[BaseException], during: str) -> tuple[SkipReason, str]:
        if self._config.get("transport") == "http":
            where = f"server at {bare_url(str(self._config.get('url', '')))}"
            refused = [s for s in self._http_statuses if s in (401, 403)]
            if refused:
                return "auth_refused", f"{where} refused the credentials (HTTP {refused[0]}): " + (
                    self._credential_hint()
                )
            for leaf in leaves:
                if isinstance(leaf, httpx2.TimeoutException):
                    return "timeout", f"{where} did not answer in time ({_describe(leaf)})"
                if isinstance(leaf, httpx2.ConnectError):
                    return "unreachable", f"cannot connect to {where}: {_describe(leaf)}"
                if isinstance(leaf, httpx2.UnsupportedProtocol | httpx2.InvalidURL):
                    return "error", f"{where}: {_describe(leaf)}"
            if self._http_statuses:
                status = self._http_statuses[-1]
                hint = ": check the URL (MCP endpoints are often at /mcp)" if status == 404 else ""
                return "error", f"{where} answered HTTP {status}{hint}"
            return "error", f"{where} failed {during}: {_describe(leaves[0])}"
        command = str(self._config.get("command", ""))
        for leaf in leaves:
            if isinstance(leaf, FileNotFoundError):
                return "unreachable", f"cannot start {command!r}: command not found"
            if isinstance(leaf, PermissionError):
                return "unreachable", f"cannot start {command!r}: permission denied"
            if isinstance(leaf, OSError):
                return "unreachable", f"cannot start {command!r}: {_describe(leaf)}"
            if isinstance(leaf, MCPError) and leaf.code == _CONNECTION_CLOSED:
                return "unreachable", f"{command!r} exited during {during}{self._stderr_said()}"
        return "error", f"{command!r} failed {during}: {_describe(leaves[0])}"

    def _credential_hint(self) -> str:
        auth = self._config.get("auth", "none")
        if auth == "bearer":
            return "check the bearer token"
        if auth == "header":
            return f"check the value of the {self._config.get('header_name')} header"
        return "the server wants credentials: register the source with bearer or header auth"

    def _stderr_said(self) -> str:
        """The last non-empty line the stdio server wrote to stderr, quoted, or ''."""
        if self._stderr is None:
            return ""
        try:
            fd = self._stderr.fileno()
            size = os.fstat(fd).st_size
            chunk = os.pread(fd, _STDERR_TAIL_BYTES, max(0, size - _STDERR_TAIL_BYTES))
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in chunk.decode("utf-8", "replace").splitlines()]
        tail = next((line for line in reversed(lines) if line), "")
        return f"; its last stderr line: {tail}" if tail else ""

    def _redact(self, text: str) -> str:
        """``text`` as one bounded line with every secret value replaced by ``***``."""
        return clip(redact(text, self._secret.values()), _MESSAGE_MAX_CHARS)

    def _unwrap(self, name: str, structured: Any) -> Any:
        """Drop the ``{"result": value}`` envelope when the tool's output schema is just that."""
        schema = (self._output_schemas or {}).get(name)
        if (
            isinstance(structured, dict)
            and structured.keys() == {"result"}
            and isinstance(schema, dict)
            and isinstance(schema.get("properties"), dict)
            and schema["properties"].keys() == {"result"}
        ):
            return structured["result"]
        return structured


async def check_health(
    source: DataSource, context: ToolContext, timeout_s: float = 10.0
) -> HealthResult:
    """Connect to ``source``'s server and list its tools (``tools/list``), within ``timeout_s``.

    Never raises for the server's sake: a failure is ``ok=False`` with a trace skip reason
    (``timeout`` when the deadline passed). The whole check answers within ``timeout_s``,
    closing included (for limits of 5 s and more): part of the budget is kept for stopping
    the server, which the SDK gives ~2 s before it terminates a stdio process that ignores
    the stop. ``duration_ms`` is the time to the answer, without the closing.
    """
    started = time.perf_counter()
    deadline = anyio.current_time() + timeout_s
    stop_reserve = min(_HEALTH_STOP_RESERVE_S, timeout_s / 2)
    mcp_source = McpSource(source, context)
    try:
        specs = await open_listed(mcp_source, timeout_s - stop_reserve, said_s=timeout_s)
        names = [spec.name for spec in specs]
        listed = f"{source.label}: listed {plural(len(names), 'tool')}"
        return _health(True, None, listed, started, names)
    except SourceUnavailable as exc:
        return _health(False, exc.reason, exc.message, started)
    finally:  # after the result is timed; shielded inside, hurried to the deadline
        grace = deadline - anyio.current_time() - _SDK_STOP_S
        await mcp_source.close(grace_s=max(0.0, grace))


async def open_listed(
    source: McpSource, limit_s: float, *, said_s: float | None = None
) -> list[ToolSpec]:
    """Open ``source`` and list its tools within ``limit_s``; any failure is a
    ``SourceUnavailable`` (a timeout names ``said_s``, default ``limit_s``). The caller
    closes the source either way (closing one that never opened does nothing)."""
    try:
        with anyio.fail_after(limit_s):
            await source.__aenter__()
            return await source.list_tools()
    except TimeoutError:
        within = limit_s if said_s is None else said_s
        message = f"{source.label}: did not list its tools within {within:g} s"
        raise SourceUnavailable("timeout", message) from None
    except SourceUnavailable:
        raise
    except Exception as exc:  # a server bug must cost only that source, never the caller
        logger.debug("opening MCP source %s failed", source.label, exc_info=True)
        message = source._redact(f"{source.label}: {_describe(exc)}")
        raise SourceUnavailable("error", message) from exc


def _health(
    ok: bool,
    reason: SkipReason | None,
    message: str,
    started: float,
    tool_names: list[str] | None = None,
) -> HealthResult:
    duration_ms = (time.perf_counter() - started) * 1000
    return HealthResult(ok, reason, message, tool_names or [], duration_ms)


def _connection_gone(exc: BaseException) -> bool:
    """Whether a failed call means the server is gone rather than that the call failed."""
    for leaf in _leaves(exc):
        if isinstance(leaf, MCPError) and leaf.code == _CONNECTION_CLOSED:
            return True
        if isinstance(leaf, httpx2.TransportError | anyio.BrokenResourceError):
            return True
    return False


class _WatchedRead:
    """A transport's read stream that reports its end (EOF, closed, broken) once."""

    def __init__(self, inner: Any, on_end: Callable[[str], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    def __getattr__(self, name: str) -> Any:  # ``last_context`` and the like
        return getattr(self._inner, name)

    def _ended(self) -> None:
        self._on_end("the server closed the connection (it exited or was killed)")

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._ended()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _WatchedRead:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except (StopAsyncIteration, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._ended()
            raise

    async def __aenter__(self) -> _WatchedRead:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        result: bool | None = await self._inner.__aexit__(*exc_info)
        return result


@asynccontextmanager
async def _watch_end(transport: _Transport, on_end: Callable[[str], None]) -> AsyncIterator[Any]:
    """``transport`` with its read stream watched for its end."""
    async with transport as (read, write):
        yield _WatchedRead(read, on_end), write


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (possibly nested) exception groups, in order."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def _content_text(content: list[mcp_types.ContentBlock]) -> str:
    """Text blocks as they are; other blocks as a short placeholder naming their kind."""
    parts: list[str] = []
    for block in content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}]")
        else:
            parts.append(f"[{block.type}]")
    return "\n".join(parts)


__all__ = ["AUTH_MODES", "TRANSPORTS", "HealthResult", "McpSource", "check_health", "open_listed"]
