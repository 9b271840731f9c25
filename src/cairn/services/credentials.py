"""Model-backend credentials: the sandbox's encrypted store first, then the environment."""

from __future__ import annotations

from typing import Any

from cairn.errors import UsageError
from cairn.models.base import EnvCredentials
from cairn.services.app import App


class SandboxCredentials:
    """``Credentials`` for one sandbox's runs. Looked up when a turn needs a key, so a key
    stored while the server runs is used by the next run."""

    def __init__(self, app: App, sandbox_id: str) -> None:
        self._app = app
        self._sandbox_id = sandbox_id
        self._env = EnvCredentials()

    def api_key(self, backend: str) -> str | None:
        """The stored key for ``backend``, else the environment's."""
        from cairn.store import credentials as credential_store

        with self._app.store.connect() as conn:
            stored = credential_store.api_key(conn, self._sandbox_id, backend, self._app.secrets)
        return stored or self._env.api_key(backend)


def set_credential(app: App, sandbox_id: str, backend: str, api_key: str) -> dict[str, Any]:
    """Store a key for a model backend (encrypted); returns what is stored, never the key."""
    from cairn.models.backends import check_backend_name
    from cairn.store import credentials as credential_store

    check_backend_name(backend)
    if not api_key.strip():
        raise UsageError("the API key is empty")
    with app.store.begin() as conn:
        credential_store.set_credential(conn, sandbox_id, backend, api_key.strip(), app.secrets)
        stored = credential_store.list_credentials(conn, sandbox_id)
    return next(item for item in stored if item["backend"] == backend)


def list_credentials(app: App, sandbox_id: str) -> list[dict[str, Any]]:
    """Backends with a stored key."""
    from cairn.store import credentials as credential_store

    with app.store.connect() as conn:
        return credential_store.list_credentials(conn, sandbox_id)


def delete_credential(app: App, sandbox_id: str, backend: str) -> None:
    """Forget a stored key (the environment's, if any, applies again)."""
    from cairn.store import credentials as credential_store

    with app.store.begin() as conn:
        credential_store.delete_credential(conn, sandbox_id, backend)
