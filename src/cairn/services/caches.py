"""In-memory caches of what the hot paths read, owned by the ``App`` (``app.caches``).

* **Sources** (``source_entry``): a webhook delivery needs the source's config and its
  decrypted signing secret. The cache keeps the decrypted ``DataSource`` beside the raw
  stored values it came from (``cairn.store.stamps``), and those values are read again,
  one plain statement, before the source is relied on: at once when asked ``fresh``, by
  the webhook route's group commit inside the transaction that stores the event (a
  delivery verified with a source that has changed since is verified again with the new
  one). A source updated, re-keyed or revoked by anyone, in this process or another, is
  never used with its old secret or config.
* **Triggers** (``triggers_for``): the triggers bound to a source, checked the same way
  against the columns a decision reads.
* **Agents** (``agent``) and **a sandbox's sources** (``sandbox_sources``): what a worker
  reads to execute each run, checked the same way against every stored column. Integration
  sources are never cached: their OAuth connections change apart from the source row.
* **Secrets** (``MemoSecretBox``): decrypted secrets keyed by their ciphertext. Fernet
  ciphertexts are never reused (each seal has a fresh IV), so a changed secret is a new
  key: nothing to invalidate, nothing stale.
* **API keys** (``KeyCache``): a verified token is trusted for at most ``KEY_TTL_S``
  (1 s) before the ledger is asked again, and a key revoked through this process is
  forgotten at once; revoked elsewhere, it is refused within that second.
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.domain.agents import Agent
from cairn.domain.keys import Principal
from cairn.domain.sources import DataSource
from cairn.domain.triggers import Trigger
from cairn.store.crypto import SecretBox

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from cairn.services.app import App

KEY_TTL_S = 1.0
"""How long a verified API key is trusted without asking the ledger again."""
_MAX_ENTRIES = 4096


class MemoSecretBox(SecretBox):
    """A ``SecretBox`` that remembers what it decrypted, keyed by the ciphertext itself."""

    def __init__(self, key_file: Path, max_entries: int = _MAX_ENTRIES) -> None:
        super().__init__(key_file)
        self._opened: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._max = max_entries

    def open(self, ciphertext: str | None) -> dict[str, str]:
        """The secret mapping (a copy: callers may change theirs)."""
        if not ciphertext:
            return {}
        found = self._opened.get(ciphertext)
        if found is None:
            found = super().open(ciphertext)
            self._opened[ciphertext] = found
            if len(self._opened) > self._max:
                self._opened.popitem(last=False)
        return dict(found)


@dataclass(frozen=True, slots=True)
class _Entry:
    stamp: tuple[Any, ...]
    value: Any


class KeyCache:
    """Verified bearer tokens → principals, each trusted for ``ttl_s`` at most."""

    def __init__(self, ttl_s: float = KEY_TTL_S, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self._clock = clock
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def get(self, token: str) -> Principal | None:
        """The principal of a token verified less than ``ttl_s`` ago, else ``None``."""
        hit = self._verified.get(token)
        if hit is None:
            return None
        principal, verified_at = hit
        if self._clock() - verified_at >= self.ttl_s:
            del self._verified[token]
            return None
        return principal

    def put(self, token: str, principal: Principal) -> None:
        """Remember a token the ledger has just verified."""
        self._verified[token] = (principal, self._clock())
        self._verified.move_to_end(token)
        if len(self._verified) > _MAX_ENTRIES:
            self._verified.popitem(last=False)

    def forget(self, key_id: str) -> None:
        """Drop every token of a key (it was revoked through this process)."""
        for token in [t for t, (p, _) in self._verified.items() if p.key_id == key_id]:
            del self._verified[token]


class Caches:
    """The App's hot-path caches (see the module docstring)."""

    def __init__(self, app: App) -> None:
        self._app = app
        self.keys = KeyCache()
        self._sources: dict[str, _Entry] = {}
        self._triggers: dict[tuple[str, str], _Entry] = {}
        self._agents: dict[str, _Entry] = {}
        self._sandbox_sources: dict[str, _Entry] = {}

    def source_entry(
        self, source_id: str, *, fresh: bool = False
    ) -> tuple[DataSource, tuple[Any, ...]] | None:
        """Source ``source_id`` with its secret, and the stamp it was built from
        (``cairn.store.stamps``). ``fresh``: as stored right now (one statement, more on a
        change); otherwise the cached one when there is one, *unchecked*: the caller must
        compare its stamp with ``stamps.source_stamp`` inside the transaction that uses it
        (the group commit of ``cairn.services.ingest`` does, once per batch)."""
        from cairn.store import sources as source_store
        from cairn.store import stamps

        app = self._app
        if "\x00" in source_id:  # no stored id has one, and PostgreSQL refuses it in text
            return None
        hit = self._sources.get(source_id)
        if hit is not None and not fresh:
            return hit.value, hit.stamp
        with app.store.connect() as conn:
            stamp = stamps.source_stamp(conn, source_id)
            if stamp is None:
                self._sources.pop(source_id, None)
                return None
            if hit is not None and hit.stamp == stamp:
                cached: DataSource = hit.value
                return cached, stamp
            source = source_store.find_source(conn, source_id, app.secrets)
        if source is None:
            self._sources.pop(source_id, None)
            return None
        # Keyed by what was read first: if the row changed in between, the next check
        # sees a different stamp and reloads.
        self._remember(self._sources, source_id, _Entry(stamp, source))
        return source, stamp

    def triggers_for(
        self, sandbox_id: str, source_id: str, conn: Connection | None = None
    ) -> list[Trigger]:
        """The triggers bound to a source, as stored right now, oldest first; read on
        ``conn`` when given (the caller's transaction)."""
        if conn is None:
            with self._app.store.connect() as own:
                return self.triggers_for(sandbox_id, source_id, own)
        from cairn.store import stamps
        from cairn.store import triggers as trigger_store

        key = (sandbox_id, source_id)
        stamp = stamps.trigger_stamp(conn, sandbox_id, source_id)
        hit = self._triggers.get(key)
        if hit is not None and hit.stamp == stamp:
            return list(hit.value)
        if not stamp:
            found: list[Trigger] = []
        else:
            found = trigger_store.list_triggers(conn, sandbox_id, source_id=source_id)
        self._remember(self._triggers, key, _Entry(stamp, found))
        return list(found)

    def agent(self, conn: Connection, sandbox_id: str, agent_id: str) -> Agent:
        """Agent ``agent_id`` of the sandbox as stored right now, or ``NotFound``."""
        from cairn.errors import NotFound
        from cairn.store import agents as agent_store
        from cairn.store import stamps

        stamp = stamps.agent_stamp(conn, sandbox_id, agent_id)
        if stamp is None:
            self._agents.pop(agent_id, None)
            raise NotFound(f"no agent with id {agent_id!r} in sandbox {sandbox_id!r}")
        hit = self._agents.get(agent_id)
        if hit is not None and hit.stamp == stamp:
            cached: Agent = hit.value  # frozen: safe to share
            return cached
        agent = agent_store.get_agent_by_id(conn, sandbox_id, agent_id)
        self._remember(self._agents, agent_id, _Entry(stamp, agent))
        return agent

    def sandbox_sources(self, conn: Connection, sandbox_id: str) -> list[DataSource] | None:
        """Every stored source of the sandbox with its secret, as stored right now; ``None``
        when one of them is an integration (the caller reads them with their connections).
        Each call gets its own copies: a run may change its sources' dicts."""
        from cairn.store import sources as source_store
        from cairn.store import stamps

        stamp = stamps.sandbox_sources_stamp(conn, sandbox_id)
        if any(row[1] == "integration" for row in stamp):
            self._sandbox_sources.pop(sandbox_id, None)
            return None
        hit = self._sandbox_sources.get(sandbox_id)
        if hit is None or hit.stamp != stamp:
            found = source_store.list_sources(conn, sandbox_id, self._app.secrets)
            hit = _Entry(stamp, found)
            self._remember(self._sandbox_sources, sandbox_id, hit)
        return [_copy_source(source) for source in hit.value]

    @staticmethod
    def _remember(table: dict[Any, _Entry], key: Any, entry: _Entry) -> None:
        if len(table) >= _MAX_ENTRIES:
            table.pop(next(iter(table)))
        table[key] = entry


def _copy_source(source: DataSource) -> DataSource:
    fresh = copy.copy(source)
    fresh.config = copy.deepcopy(source.config)
    fresh.secret = dict(source.secret)
    return fresh


__all__ = ["KEY_TTL_S", "Caches", "KeyCache", "MemoSecretBox"]
