"""Which server issued the local owner keys: a secret in ``CAIRN_HOME`` that only the
server started from that home can prove it holds.

The CLI finds owner keys in ``CAIRN_HOME/local-keys/`` by itself. Before it sends one to
``CAIRN_URL``, it asks that server to prove it knows this home's identity secret (an HMAC
of a fresh nonce), so a local key never goes to another host, port or Cairn server, which
could keep it. The secret never travels; a server that cannot answer gets no key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

IDENTITY_FILE = "server-identity"
"""``CAIRN_HOME/server-identity``: 32 random bytes (hex), mode 0600."""


def identity_path(home: Path) -> Path:
    """Where the identity secret of the server of ``home`` is kept."""
    return home / IDENTITY_FILE


def read_identity(home: Path) -> bytes | None:
    """The identity secret, or None when no server has run from ``home``."""
    try:
        return bytes.fromhex(identity_path(home).read_text().strip())
    except (OSError, ValueError):
        return None


def ensure_identity(home: Path) -> bytes:
    """The identity secret of ``home``, made on first use (``cairn serve`` calls this)."""
    found = read_identity(home)
    if found is not None:
        return found
    secret = secrets.token_bytes(32)
    home.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(identity_path(home), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret.hex())
    return secret


def prove(secret: bytes, nonce: str) -> str:
    """The server's answer to ``nonce``: HMAC-SHA256, hex."""
    return hmac.new(secret, b"cairn-local-identity:" + nonce.encode(), hashlib.sha256).hexdigest()


def new_nonce() -> str:
    """A fresh challenge, never reused."""
    return secrets.token_hex(16)


def verify(secret: bytes, nonce: str, proof: object) -> bool:
    """Whether ``proof`` answers ``nonce`` for ``secret`` (constant-time)."""
    return isinstance(proof, str) and hmac.compare_digest(prove(secret, nonce), proof)
