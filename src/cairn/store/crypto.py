"""Encryption at rest for source secrets (Fernet: AES-128-CBC with HMAC-SHA256).

The key comes from ``CAIRN_SECRET_KEY`` or, on the embedded default, from a key file the
first use creates beside the database with mode 0600. Losing the key loses the secrets
(sources then fail their health check with ``auth_refused`` and can be re-added), never
the ledger.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.errors import StoreError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


class SecretBox:
    """Encrypts and decrypts a source's secret mapping."""

    def __init__(self, key_file: Path) -> None:
        self._key_file = key_file
        self._fernet: Fernet | None = None

    def _box(self) -> Fernet:
        if self._fernet is None:
            from cryptography.fernet import Fernet

            key = os.environ.get("CAIRN_SECRET_KEY")
            if key is None:
                if not self._key_file.exists():
                    from cairn.config import private_dir

                    private_dir(self._key_file.parent)
                    descriptor = os.open(
                        self._key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
                    )
                    with os.fdopen(descriptor, "wb") as handle:
                        handle.write(Fernet.generate_key())
                key = self._key_file.read_text().strip()
            try:
                self._fernet = Fernet(key.encode())
            except ValueError:
                raise StoreError(
                    "CAIRN_SECRET_KEY (or the key file) is not a valid Fernet key"
                ) from None
        return self._fernet

    def seal(self, secret: dict[str, str]) -> str | None:
        """Ciphertext for ``secret`` (``None`` when there is nothing to keep)."""
        if not secret:
            return None
        return self._box().encrypt(json.dumps(secret).encode()).decode()

    def open(self, ciphertext: str | None) -> dict[str, str]:
        """The secret mapping, or ``{}`` when there is none."""
        if not ciphertext:
            return {}
        from cryptography.fernet import InvalidToken

        try:
            data: dict[str, str] = json.loads(self._box().decrypt(ciphertext.encode()))
        except InvalidToken:
            raise StoreError(
                "a source secret cannot be decrypted with this key; "
                "set CAIRN_SECRET_KEY to the key it was stored with, or re-add the source"
            ) from None
        return data
