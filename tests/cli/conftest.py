"""Runs the real ``cairn`` entry point in-process against the test's ledger."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cairn.cli.main import main


@dataclass
class Result:
    """What one CLI invocation did."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Cli = Callable[..., Result]


@pytest.fixture
def cli(database_url: str, cairn_home: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("agent", "list", "--json")`` → ``Result``; uses ``--db`` for the test's ledger."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(["--db", database_url, *args])
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke
