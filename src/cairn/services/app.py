"""The per-process application object the services work on."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from cairn.config import Settings
from cairn.store import Store, open_store
from cairn.store.crypto import SecretBox

if TYPE_CHECKING:
    from cairn.runner.engine import Runner
    from cairn.tools.base import ToolContext


class App:
    """Settings plus lazily opened parts: the store on first use, the runner on first fire."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self._store = store

    @property
    def store(self) -> Store:
        """The ledger, opened (and migrated if needed) on first use."""
        if self._store is None:
            self._store = open_store(self.settings.database_url)
        return self._store

    @cached_property
    def secrets(self) -> SecretBox:
        """Seals and opens source secrets."""
        return SecretBox(self.settings.home / "secret.key")

    @cached_property
    def tool_context(self) -> ToolContext:
        """What tool sources get when they are built."""
        from cairn.tools.base import ToolContext

        return ToolContext(
            http_allowed_hosts=self.settings.http_allowed_hosts,
            resolve_timeout_s=self.settings.resolve_timeout_s,
        )

    @cached_property
    def runner(self) -> Runner:
        """The in-process run engine."""
        from cairn.pricing import load_price_table
        from cairn.runner.engine import Runner

        return Runner(self.store, self.tool_context, prices=load_price_table(self.settings.home))

    def close(self) -> None:
        """Release database connections."""
        if self._store is not None:
            self._store.close()
