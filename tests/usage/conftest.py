"""Usage tests price the scripted ``priced-1`` model (``helpers.PRICES``) in the test's
``CAIRN_HOME``, before the runner loads the price table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import cli as cli
from tests.usage.helpers import PRICES


@pytest.fixture(autouse=True)
def prices(cairn_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$CAIRN_HOME/prices.json`` with the test prices (and no other override)."""
    monkeypatch.delenv("CAIRN_PRICES_FILE", raising=False)
    path = cairn_home / "prices.json"
    path.write_text(json.dumps(PRICES))
    return path
