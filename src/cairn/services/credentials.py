"""Model-backend keys a sandbox stores (encrypted); runs read them through
``cairn.services.app.SandboxCredentials``, before the environment's."""

from __future__ import annotations

from typing import Any

from cairn.errors import UsageError
from cairn.services.app import App
from cairn.store import credentials as credential_store


def set_credential(app: App, sandbox_id: str, backend: str, api_key: str) -> dict[str, Any]:
    """Store a key for a model backend (encrypted); returns what is stored, never the key."""
    from cairn.models.backends import check_backend_name

    check_backend_name(backend)
    if not api_key.strip():
        raise UsageError("the API key is empty")
    with app.store.begin() as conn:
        credential_store.set_credential(conn, sandbox_id, backend, api_key.strip(), app.secrets)
        stored = credential_store.list_credentials(conn, sandbox_id)
    return next(item for item in stored if item["backend"] == backend)


def list_credentials(app: App, sandbox_id: str) -> list[dict[str, Any]]:
    """Backends with a stored key."""
    with app.store.connect() as conn:
        return credential_store.list_credentials(conn, sandbox_id)


def delete_credential(app: App, sandbox_id: str, backend: str) -> None:
    """Forget a stored key (the environment's, if any, applies again)."""
    with app.store.begin() as conn:
        credential_store.delete_credential(conn, sandbox_id, backend)
