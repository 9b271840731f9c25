"""The per-process application object the services work on, and the credentials its
runner reads (so the App imports no other service: they all import it)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from cairn.config import Settings

if TYPE_CHECKING:
    from cairn.execution.base import BacklogGate, Completions, ExecutionBackend
    from cairn.runner.bus import RunBus
    from cairn.runner.engine import Runner
    from cairn.services.caches import Caches
    from cairn.store.crypto import SecretBox
    from cairn.store.engine import Store
    from cairn.store.reader import LedgerReader
    from cairn.tools.base import ToolContext
    from cairn.tools.pool import PoolSettings, SessionPool


class App:
    """Settings plus lazily opened parts: the store on first use, the runner on first fire."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self._store = store
        self._reader: LedgerReader | None = None
        self._closers: list[Callable[[], None]] = []
        self.bus: RunBus | None = None  # set by the server: live events for SSE
        # Set by ``cairn serve`` / ``cairn worker``: fires are queued in the ledger for
        # workers. ``None`` (the CLI in-process): a fire runs before the call returns.
        self.executor: ExecutionBackend | None = None
        self.tool_pool: SessionPool | None = None  # set by the server: warm MCP sessions
        self._gate: BacklogGate | None = None

    @property
    def gate(self) -> BacklogGate:
        """Back-pressure: refuses fires once the ledger's backlog is at its limit."""
        if self._gate is None:
            from cairn.execution.base import BacklogGate

            self._gate = BacklogGate(self, self.settings.max_backlog)
        return self._gate

    @cached_property
    def completions(self) -> Completions:
        """Waits for runs to be final (synchronous fires through the workers)."""
        from cairn.execution.base import Completions

        return Completions()

    @property
    def store(self) -> Store:
        """The ledger, opened (and migrated if needed) on first use."""
        if self._store is None:
            from cairn.store.engine import open_store

            self._store = open_store(self.settings.database_url)
        return self._store

    @property
    def reader(self) -> LedgerReader:
        """The listing read path: plain ``sqlite3`` on an up-to-date embedded ledger (no
        SQLAlchemy import, for a fast cold CLI), else the store."""
        if self._reader is None:
            from cairn.store.sqlite_reader import SqliteReader, sqlite_path

            path = sqlite_path(self.settings.database_url) if self._store is None else None
            fast = SqliteReader.open(path) if path is not None else None
            if fast is not None:
                self._closers.append(fast.close)
                self._reader = fast
            else:
                from cairn.store.reader import StoreReader

                self._reader = StoreReader(self.store)
        return self._reader

    @cached_property
    def secrets(self) -> SecretBox:
        """Seals and opens source secrets (remembering what it opened, by ciphertext)."""
        from cairn.services.caches import MemoSecretBox

        return MemoSecretBox(self.settings.home / "secret.key")

    @cached_property
    def caches(self) -> Caches:
        """The hot paths' caches: sources, triggers, verified API keys."""
        from cairn.services.caches import Caches

        return Caches(self)

    @cached_property
    def tool_context(self) -> ToolContext:
        """What tool sources get when they are built."""
        from cairn.tools.base import ToolContext

        return ToolContext(
            http_allowed_hosts=self.settings.http_allowed_hosts,
            resolve_timeout_s=self.settings.resolve_timeout_s,
        )

    @property
    def pool_settings(self) -> PoolSettings:
        """How the server keeps MCP sessions warm."""
        from cairn.tools.pool import PoolSettings

        return PoolSettings(
            idle_close_s=self.settings.mcp_idle_close_s,
            tools_ttl_s=self.settings.mcp_tools_ttl_s,
            max_concurrent_calls=self.settings.mcp_max_calls,
        )

    @cached_property
    def runner(self) -> Runner:
        """The in-process run engine, with the OpenTelemetry exporter as its observer when
        ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (flushed and stopped by ``close``)."""
        from cairn.pricing import load_price_table
        from cairn.runner.engine import Runner
        from cairn.telemetry import start_export, stop_export

        export = start_export()
        if export is not None:
            self._closers.append(lambda: stop_export(export))
        return Runner(
            self.store,
            self.tool_context,
            credentials=lambda sandbox_id: SandboxCredentials(self, sandbox_id),
            prices=load_price_table(self.settings.home),
            bus=self.bus,
            observer=export,
        )

    def close(self) -> None:
        """Release database connections."""
        for closer in self._closers:
            closer()
        if self._store is not None:
            self._store.close()


class SandboxCredentials:
    """``Credentials`` for one sandbox's runs. Looked up when a turn needs a key, so a key
    stored while the server runs is used by the next run."""

    def __init__(self, app: App, sandbox_id: str) -> None:
        self._app = app
        self._sandbox_id = sandbox_id
        from cairn.models.base import EnvCredentials

        self._env = EnvCredentials()

    def api_key(self, backend: str) -> str | None:
        """The stored key for ``backend``, else the environment's."""
        from cairn.store import credentials as credential_store

        with self._app.store.connect() as conn:
            stored = credential_store.api_key(conn, self._sandbox_id, backend, self._app.secrets)
        return stored or self._env.api_key(backend)
