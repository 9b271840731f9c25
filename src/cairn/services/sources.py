"""Tool-source operations: register an MCP server, check it, revoke it."""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.domain.keys import Principal
from cairn.domain.sources import AuthMode, DataSource, Transport
from cairn.errors import Conflict, Forbidden, UsageError
from cairn.ids import new_id
from cairn.services.app import App
from cairn.store import sources as source_store
from cairn.store.sandboxes import require_sandbox
from cairn.text import record
from cairn.tools.builtin import BUILTIN_SOURCE_ID, builtin_source_record

if TYPE_CHECKING:
    from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
class McpSourceSpec:
    """What ``cairn source add`` collects for a user's MCP server."""

    label: str
    transport: Transport
    command: str | None = None
    args: list[str] = field(default_factory=list)
    url: str | None = None
    auth: AuthMode = "none"
    token: str | None = None
    header_name: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    namespace: str | None = None
    allowed_tools: list[str] | None = None
    calls_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The result of a health check, as stored on the source and shown to people."""

    source: DataSource
    ok: bool
    reason: str | None
    message: str
    tool_names: list[str]
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return record(self) | {
            "source": self.source.to_dict(),
            "duration_ms": round(self.duration_ms, 1),
        }


def _validate(spec: McpSourceSpec) -> None:
    if not spec.label.strip():
        raise UsageError("a source needs a non-empty label")
    if spec.transport == "stdio" and not spec.command:
        raise UsageError("a stdio MCP source needs --command")
    if spec.transport == "http" and not (spec.url or "").startswith(("http://", "https://")):
        raise UsageError(f"an http MCP source needs --url http(s)://…, got {spec.url!r}")
    if spec.auth != "none" and not spec.token:
        raise UsageError(f"auth {spec.auth!r} needs --token (or CAIRN_MCP_TOKEN)")
    if spec.auth == "header" and not spec.header_name:
        raise UsageError("auth 'header' needs --header-name")
    if spec.auth != "none" and spec.transport == "stdio":
        raise UsageError("auth applies to http sources; pass secrets to stdio servers with --env")
    if spec.calls_per_minute is not None and spec.calls_per_minute < 1:
        raise UsageError("--calls-per-minute must be at least 1")
    if (
        spec.namespace is not None
        and not spec.namespace.replace("_", "").replace("-", "").isalnum()
    ):
        raise UsageError(f"namespace {spec.namespace!r} may use letters, digits, '_' and '-'")


def default_namespace(label: str) -> str:
    """The tool-name prefix when ``--namespace`` is not given: the label (unique in the
    sandbox), so an allowlist like ``["orders_*"]`` written after it matches."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", label.strip())


def _url_without_secrets(url: str) -> tuple[str, dict[str, str]]:
    """The URL to show (query values and user info replaced by ``***``) and the secret part
    to keep encrypted: the whole URL, and each query value on its own so that redaction
    finds it in any error or tool result."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not query and "@" not in parts.netloc:
        return url, {}
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"***@{host}" if "@" in parts.netloc else host
    shown = urlunsplit(
        (parts.scheme, netloc, parts.path, urlencode([(k, "***") for k, _ in query]), "")
    )
    secret = {"url": url} | {f"url:{k}": v for k, v in query if v}
    if "@" in parts.netloc:
        secret["url:userinfo"] = parts.netloc.rsplit("@", 1)[0]
    return shown, secret


def require_stdio_allowed(app: App, principal: Principal, command: str) -> None:
    """A stdio MCP server is a program run on the server's machine as the server's user:
    only the operator allows one. The CLI on this machine (no key) may; an API key may
    only name a command the operator listed in ``CAIRN_STDIO_COMMANDS``."""
    if principal.operator:
        return
    allowed = app.settings.stdio_commands
    if "*" in allowed or command in allowed:
        return
    raise Forbidden(
        f"stdio MCP servers run programs on the server's machine, and {command!r} is not "
        "one the operator allowed: run 'cairn source add' on the server's machine (without "
        "CAIRN_URL), or have the operator list it in CAIRN_STDIO_COMMANDS"
    )


async def add_mcp_source(app: App, sandbox_id: str, spec: McpSourceSpec) -> HealthReport:
    """Register the server, then health-check it: a failed check saves it with status
    ``error`` and the reason (it may come up later), never refuses it."""
    _validate(spec)
    source_id = new_id("src")
    config: dict[str, Any] = {
        "transport": spec.transport,
        "auth": spec.auth,
        "namespace": spec.namespace or default_namespace(spec.label),
    }
    secret: dict[str, str] = {}
    if spec.transport == "stdio":
        config.update(command=spec.command, args=list(spec.args))
    else:
        config["url"], secret = _url_without_secrets(spec.url or "")
    if spec.header_name:
        config["header_name"] = spec.header_name
    if spec.allowed_tools is not None:
        config["allowed_tools"] = list(spec.allowed_tools)
    if spec.calls_per_minute:
        config["calls_per_minute"] = spec.calls_per_minute
    secret.update({f"env:{k}": v for k, v in spec.env.items()})
    if spec.token:
        secret["token"] = spec.token
    if secret:
        config["secret_fields"] = sorted(secret)
    source = DataSource(source_id, sandbox_id, "user_mcp", spec.label, config, secret=secret)
    with app.store.begin() as conn:
        require_sandbox(conn, sandbox_id)
        source_store.create_source(conn, source, app.secrets)
    return await check_source(app, sandbox_id, source_id)


async def check_source(app: App, sandbox_id: str, id_or_label: str) -> HealthReport:
    """Run the source's health check (``tools/list``) now and record the result."""
    with app.store.connect() as conn:
        source = source_store.get_source(conn, sandbox_id, id_or_label, app.secrets)
    if source.status == "revoked":
        raise UsageError(f"source {source.label!r} was revoked; add it again to use it")
    if source.kind == "user_mcp":
        from cairn.tools.mcp import check_health

        health = await check_health(source, app.tool_context, app.settings.resolve_timeout_s)
    elif source.kind == "integration":
        health = await _check_by_resolving(app, sandbox_id, source.source_id)
    else:
        raise UsageError(f"{source.kind} sources offer no tools: there is nothing to check")
    status = "active" if health.ok else "error"
    with app.store.begin() as conn:
        source_store.set_source_status(
            conn,
            sandbox_id,
            source.source_id,
            status=status,
            reason=health.message if not health.ok else None,
            checked=True,
        )
        source = source_store.get_source(conn, sandbox_id, source.source_id)
    return HealthReport(
        source, health.ok, health.reason, health.message, health.tool_names, health.duration_ms
    )


async def _check_by_resolving(app: App, sandbox_id: str, source_id: str) -> Any:
    """Any tool-source kind's health: build it exactly as a run would and list its tools."""
    from cairn.tools.mcp import HealthResult
    from cairn.tools.resolution import resolve_tools

    async with resolve_tools(
        selection=[source_id],
        allowlist=[],
        available=available_sources(app, sandbox_id),
        context=app.tool_context,
    ) as tools:
        trace = tools.trace
    if trace.sources_skipped:
        skip = trace.sources_skipped[0]
        return HealthResult(False, skip.reason, skip.message, [], trace.duration_ms)
    return HealthResult(True, None, "healthy", list(trace.tool_names_advertised), trace.duration_ms)


def list_sources(app: App, sandbox_id: str) -> list[DataSource]:
    """Registered sources (without secrets), plus the always-present builtin source first."""
    with app.store.connect() as conn:
        return [builtin_source_record(sandbox_id), *source_store.list_sources(conn, sandbox_id)]


def get_source(app: App, sandbox_id: str, id_or_label: str) -> DataSource:
    """One source by id or label, without its secret."""
    if id_or_label == BUILTIN_SOURCE_ID:
        return builtin_source_record(sandbox_id)
    with app.store.connect() as conn:
        return source_store.get_source(conn, sandbox_id, id_or_label)


def revoke_source(app: App, sandbox_id: str, id_or_label: str) -> DataSource:
    """Forget the binding and its secret; the server itself keeps running. Agents that name
    it explicitly then record it as skipped (``disabled``)."""
    with app.store.begin() as conn:
        source = source_store.get_source(conn, sandbox_id, id_or_label)
        if source.status == "revoked":  # the one rule for removal verbs (docs/cli.md)
            raise Conflict(f"source {source.label} ({source.source_id}) is already revoked")
        source_store.set_source_status(
            conn,
            sandbox_id,
            source.source_id,
            status="revoked",
            reason="revoked by user",
            forget_secret=True,
        )
        revoked = source_store.get_source(conn, sandbox_id, source.source_id)
    if app.tool_pool is not None:  # stop its warm session now rather than when idle
        app.tool_pool.discard(revoked.source_id)
    return revoked


def available_sources(
    app: App, sandbox_id: str, conn: Connection | None = None
) -> list[DataSource]:
    """Every source a run in the sandbox could use, with secrets, for building them. Read
    on ``conn`` when the caller holds one (a worker reading the agent too), else on a
    connection of its own."""
    with nullcontext(conn) if conn is not None else app.store.connect() as conn:
        cached = app.caches.sandbox_sources(conn, sandbox_id)
        if cached is not None:
            return [builtin_source_record(sandbox_id), *cached]
        stored = source_store.list_sources(conn, sandbox_id, app.secrets)
    if any(s.kind == "integration" for s in stored):  # they need their OAuth connections
        from cairn.services.connections import attach_connections

        attach_connections(app, sandbox_id, stored)
    return [builtin_source_record(sandbox_id), *stored]
