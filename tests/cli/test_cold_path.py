"""The hot read path stays light: listing runs on the embedded ledger imports no SQLAlchemy,
pydantic, httpx or rich (their imports were most of a cold CLI's time; bench/cli_cold.py
measures the time itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Cli

PROBE = """
import sys
from cairn.cli.main import main
try:
    main(["--db", sys.argv[1], "agent", "runs", "support", "--json"])
except SystemExit as done:
    assert not done.code, done.code
heavy = [m for m in ("sqlalchemy", "pydantic", "httpx", "rich", "anyio", "mcp") if m in sys.modules]
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def test_listing_runs_as_json_imports_no_heavy_library(
    cli: Cli, database_url: str, cairn_home: Path
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL the listing takes the SQLAlchemy path by design")
    assert cli("agent", "create", "support", "--prompt", "p").exit_code == 0
    assert cli("agent", "test", "support").exit_code == 0
    done = subprocess.run(
        [sys.executable, "-c", PROBE, database_url],
        capture_output=True,
        text=True,
        check=True,
        env={"CAIRN_HOME": str(cairn_home), "PATH": "/usr/bin:/bin"},
    )
    assert len(json.loads(done.stdout)) == 1
    assert "HEAVY=\n" in done.stderr, done.stderr
