"""Careless input gets one line on stderr and exit 2, never a traceback (issue 15, points
6, 14 and 15): a table of inputs → message, exit code, through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.newcomer.conftest import Cli
from tests.newcomer.serving import cairn, clean_env, serve

DEEP = "[" * 5000 + "]" * 5000


def _files(tmp_path: Path) -> dict[str, str]:
    latin = tmp_path / "latin1.md"
    latin.write_bytes("Réponds en français.".encode("latin-1"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"title": ', encoding="utf-8")
    return {"LATIN1": str(latin), "BROKEN": str(broken)}


CASES = [
    pytest.param(
        ["agent", "create", "x", "--prompt-file", "LATIN1"],
        "--prompt-file",
        "is not UTF-8 text",
        id="prompt-file-not-utf8",
    ),
    pytest.param(["run", "caf\udce9 au lait"], "not valid UTF-8", "'caf'", id="bad-bytes-arg"),
    pytest.param(
        ["agent", "test", "x", "--event-payload", DEEP],
        "--event-payload",
        "nested",
        id="json-5000-deep",
    ),
    pytest.param(
        ["agent", "test", "x", "--event-payload", '{"n": NaN}'],
        "--event-payload",
        "NaN",
        id="nan-in-payload",
    ),
    pytest.param(["runs", "show", ""], "empty", "", id="empty-run-id"),
    pytest.param(
        ["agent", "test", "x", "--event-file", "BROKEN"],
        "--event-file",
        "is not valid JSON",
        id="bad-event-file-named-as-such",
    ),
    pytest.param(["connection", "revoke", "slack"], "pass --yes", "", id="revoke-needs-yes"),
    pytest.param(
        ["source", "schedule", "add", "tick", "--cron", "* * * * * *"],
        "five fields",
        "got 6",
        id="six-field-cron",
    ),
    pytest.param(
        ["runs", "prune", "--older-than", "0s", "--yes"], "at least 1h", "", id="prune-0s"
    ),
]


@pytest.mark.parametrize(("args", "says", "also"), CASES)
def test_careless_input_is_one_line_and_exit_2(
    cli: Cli, tmp_path: Path, args: list[str], says: str, also: str
) -> None:
    files = _files(tmp_path)
    result = cli(*[files.get(arg, arg) for arg in args])
    assert result.exit_code == 2, result
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert says in result.stderr and also in result.stderr.replace("nan", "NaN")
    assert "Traceback" not in result.stderr
    if "--event-file" in args:
        assert "--event-payload" not in result.stderr


def test_a_schedule_more_frequent_than_the_minimum_is_refused(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_MIN_SCHEDULE_INTERVAL_S", "300")
    refused = cli("source", "schedule", "add", "tick", "--cron", "*/2 * * * *")
    assert refused.exit_code == 2
    assert "fires every 120 s, more often than the minimum of 300 s" in refused.stderr
    allowed = cli("source", "schedule", "add", "tock", "--cron", "*/5 * * * *", "--json")
    assert allowed.exit_code == 0, allowed.stderr


def test_cairn_home_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "not-a-dir"
    home.write_text("oops")
    result = cairn("agent", "list", env=clean_env(home))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "cannot be used as a directory" in result.stderr


@pytest.mark.slow
def test_careless_input_through_a_server_is_one_line_too(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve(home) as server:
        env = clean_env(home) | {"CAIRN_URL": server.url}
        made = cairn("sandbox", "create", "acme", env=env)
        assert made.returncode == 0, made.stderr
        key = cairn("--sandbox", "acme", "key", "create", "--role", "editor", env=env)
        assert key.returncode == 0, key.stderr
        token = key.stdout.strip().splitlines()[-1]
        table = [
            (["run", "caf\udce9"], env, "not valid UTF-8"),
            (["agent", "test", "x", "--event-payload", '{"n": NaN}'], env, "NaN"),
            (["agent", "test", "x", "--event-payload", DEEP], env, "nested"),
            (["agent", "list"], env | {"CAIRN_API_KEY": token}, "it belongs to sandbox 'acme'"),
        ]
        for args, with_env, says in table:
            result = cairn(*args, env=with_env)
            assert result.returncode == 2, (args[:2], result.stderr)
            assert result.stderr.count("\n") == 1, result.stderr
            assert says in result.stderr
