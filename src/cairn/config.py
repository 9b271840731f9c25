"""Settings from the environment, resolved once per process.

- ``CAIRN_HOME``: where the embedded database and the key file live (the user data dir).
- ``CAIRN_DATABASE_URL``: the ledger, ``sqlite:///…`` or ``postgresql://…`` (SQLite in home).
- ``CAIRN_SANDBOX``: the sandbox the CLI acts in (``default``).
- ``CAIRN_SECRET_KEY``: Fernet key for source secrets (a key file in home).
- ``CAIRN_RETENTION_DAYS``: the age ``cairn runs prune`` deletes by default (30).
- ``CAIRN_HTTP_ALLOWED_HOSTS``: hosts the builtin ``http_request`` may reach (none).
- ``CAIRN_RESOLVE_TIMEOUT_S``: how long each source may take to list its tools (10).
- ``CAIRN_PRICES_FILE``: a price-table override (``$CAIRN_HOME/prices.json``).
- ``CAIRN_MIN_SCHEDULE_INTERVAL_S``: the shortest gap between two ticks a schedule source
  may have, in seconds (60): a cron that would fire more often is refused.
- ``CAIRN_MCP_IDLE_CLOSE_S``: a warm MCP session unused this long is closed (300).
- ``CAIRN_MCP_TOOLS_TTL_S``: a warm session's tool list is asked again after this (60).
- ``CAIRN_MCP_MAX_CALLS``: calls in flight at once per MCP source, by default (8).
- ``CAIRN_DASHBOARD_AUTOLOGIN``: ``1`` lets a browser on this machine into the dashboard
  without a key, as owner of ``CAIRN_SANDBOX`` (embedded SQLite ledger only; off).
- ``CAIRN_STDIO_COMMANDS``: commands API keys may register as stdio MCP servers, comma
  separated (none: only the operator's CLI on this machine may add stdio servers).
- ``CAIRN_EXECUTOR``: the execution backend, ``embedded`` (default) or ``procrastinate``.
- ``CAIRN_LEASE_S``: a running run's lease: a worker silent this long has lost it (30).
- ``CAIRN_MAX_BACKLOG``: queued runs past which fires are refused, 429/503 (10000).
- ``CAIRN_AGENT_CONCURRENCY``: runs of one agent at once, the rest wait (0: no limit).
- ``CAIRN_SANDBOX_SHARE``: the share of a worker's slots one sandbox may hold while another
  sandbox has runs waiting (0.5).
- ``CAIRN_COST_WATCH_INTERVAL_S``: how often ``cairn serve`` enforces usage thresholds (30).
- ``CAIRN_CONNECT_URL``: the connection provider integration sources reach their apps'
  tools through, over MCP (``<url>/<app_slug>``); ``--provider-url`` overrides it (none).

OpenTelemetry export is configured by the standard ``OTEL_*`` variables alone, read by
``cairn.telemetry.config`` (docs/observability.md); it is off without an OTLP endpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import UsageError


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable about one Cairn process."""

    home: Path
    database_url: str
    sandbox: str = "default"
    retention_days: int = 30
    http_allowed_hosts: tuple[str, ...] = ()
    resolve_timeout_s: float = 10.0
    lease_s: float = 30.0
    executor: str = "embedded"
    max_backlog: int = 10_000
    agent_concurrency: int = 0
    sandbox_share: float = 0.5
    connect_url: str | None = None
    min_schedule_interval_s: float = 60.0
    dashboard_autologin: bool = False
    stdio_commands: tuple[str, ...] = ()
    mcp_idle_close_s: float = 300.0
    mcp_tools_ttl_s: float = 60.0
    mcp_max_calls: int = 8
    cost_watch_interval_s: float = 30.0


def default_home() -> Path:
    """``CAIRN_HOME`` or the platform's user data directory for ``cairn``."""
    explicit = os.environ.get("CAIRN_HOME")
    if explicit:
        return Path(explicit).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("cairn", appauthor=False))


LOCAL_KEYS_DIR = "local-keys"


def ledger_tag(database_url: str) -> str:
    """A short name of one ledger, so that two ledgers sharing a ``CAIRN_HOME`` keep their
    local keys apart (the URL's digest: it may hold a password, never written out)."""
    import hashlib

    return hashlib.sha256(database_url.encode()).hexdigest()[:16]


def local_key_path(settings: Settings, sandbox_id: str) -> Path:
    """Where ``cairn serve`` keeps the local owner key of a sandbox of this ledger:
    ``CAIRN_HOME/local-keys/<ledger tag>/<sandbox>``."""
    return settings.home / LOCAL_KEYS_DIR / ledger_tag(settings.database_url) / sandbox_id


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter (0700), made if missing."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        path.chmod(0o700)
    except OSError:  # not ours: leave it as the operator made it
        pass
    return path


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number") from None


def _names(name: str) -> tuple[str, ...]:
    """A comma-separated list, its blanks dropped."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def load_settings(*, database_url: str | None = None, sandbox: str | None = None) -> Settings:
    """Settings from the environment, with command-line overrides applied."""
    home = default_home()
    url = database_url or os.environ.get("CAIRN_DATABASE_URL")
    if not url:
        try:
            private_dir(home)
        except OSError as exc:
            raise UsageError(
                f"CAIRN_HOME={str(home)!r} cannot be used as a directory "
                f"({exc.strerror}): point it at a directory"
            ) from None
        url = f"sqlite:///{home / 'cairn.db'}"
    return Settings(
        home=home,
        database_url=url,
        sandbox=sandbox or os.environ.get("CAIRN_SANDBOX") or "default",
        retention_days=int(_number("CAIRN_RETENTION_DAYS", 30)),
        http_allowed_hosts=_names("CAIRN_HTTP_ALLOWED_HOSTS"),
        resolve_timeout_s=_number("CAIRN_RESOLVE_TIMEOUT_S", 10.0),
        connect_url=os.environ.get("CAIRN_CONNECT_URL") or None,
        min_schedule_interval_s=_number("CAIRN_MIN_SCHEDULE_INTERVAL_S", 60.0),
        dashboard_autologin=os.environ.get("CAIRN_DASHBOARD_AUTOLOGIN", "") in ("1", "true", "yes"),
        stdio_commands=_names("CAIRN_STDIO_COMMANDS"),
        lease_s=_number("CAIRN_LEASE_S", 30.0),
        executor=os.environ.get("CAIRN_EXECUTOR") or "embedded",
        max_backlog=int(_number("CAIRN_MAX_BACKLOG", 10_000)),
        agent_concurrency=int(_number("CAIRN_AGENT_CONCURRENCY", 0)),
        sandbox_share=_number("CAIRN_SANDBOX_SHARE", 0.5),
        mcp_idle_close_s=_number("CAIRN_MCP_IDLE_CLOSE_S", 300.0),
        mcp_tools_ttl_s=_number("CAIRN_MCP_TOOLS_TTL_S", 60.0),
        mcp_max_calls=max(1, int(_number("CAIRN_MCP_MAX_CALLS", 8))),
        cost_watch_interval_s=_number("CAIRN_COST_WATCH_INTERVAL_S", 30.0),
    )
