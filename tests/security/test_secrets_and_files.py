"""Secrets stay secret (tool results, URLs, errors), files are private, each ledger keeps
its own local key, and a stored trace stays small whatever the catalog's size."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from cairn.config import Settings, local_key_path
from cairn.domain.sources import DataSource
from cairn.domain.trace import SAMPLE, ToolResolutionTrace
from cairn.services.access import local_key
from cairn.services.app import App
from cairn.services.sources import McpSourceSpec, add_mcp_source
from cairn.store import open_store
from cairn.tools.base import ToolContext
from cairn.tools.resolution import resolve_tools
from tests.mcp_servers import stdio_config

SECRET = "pg-pass-7f3a9c1e55"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_tool_that_echoes_its_secret_gets_it_redacted() -> None:
    record = DataSource(
        "src_orders",
        "default",
        "user_mcp",
        "orders",
        stdio_config(namespace="orders"),
        secret={"env:ORDERS_DB_URL": f"postgres://app:{SECRET}@db/orders"},
    )

    async def main() -> object:
        async with resolve_tools(
            selection=["orders"], allowlist=[], available=[record], context=ToolContext()
        ) as tools:
            output = await tools.call("orders_read_env", {"name": "ORDERS_DB_URL"})
        return output.result

    result = anyio.run(main)
    assert SECRET not in json.dumps(result)
    assert "***" in json.dumps(result)


def test_a_token_in_an_mcp_url_is_never_shown(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    app = App(Settings(home=tmp_path, database_url=url, resolve_timeout_s=1.0), open_store(url))
    try:
        spec = McpSourceSpec(
            label="remote",
            transport="http",
            url=f"http://127.0.0.1:9/mcp?token={SECRET}&team=a",
        )
        report = anyio.run(add_mcp_source, app, "default", spec)
    finally:
        app.close()
    shown = json.dumps(report.to_dict())
    assert SECRET not in shown
    assert "token=%2A%2A%2A" in shown or "token=***" in shown


def test_the_ledger_and_key_files_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = os.environ | {"CAIRN_HOME": str(home)}
    env.pop("CAIRN_DATABASE_URL", None)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cairn"), "agent", "list"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    from cairn.config import load_settings

    os.environ["CAIRN_HOME"] = str(home)
    try:
        settings = load_settings()
    finally:
        del os.environ["CAIRN_HOME"]
    app = App(settings)
    try:
        local_key(app, "default")
        app.secrets.seal({"x": "y"})
    finally:
        app.close()
    assert _mode(home) == 0o700
    assert _mode(home / "cairn.db") == 0o600
    assert _mode(home / "secret.key") == 0o600
    key_file = local_key_path(settings, "default")
    assert _mode(key_file) == 0o600
    assert _mode(key_file.parent) == 0o700 and _mode(key_file.parent.parent) == 0o700


def test_two_ledgers_in_one_home_keep_their_own_local_keys(tmp_path: Path) -> None:
    tokens = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        app = App(Settings(home=tmp_path, database_url=url), open_store(url))
        try:
            tokens.append(local_key(app, "default"))
        finally:
            app.close()
    for name, token in zip(("a", "b"), tokens, strict=True):
        url = f"sqlite:///{tmp_path / name}.db"
        app = App(Settings(home=tmp_path, database_url=url), open_store(url))
        try:
            assert local_key(app, "default") == token, "the other ledger did not overwrite it"
        finally:
            app.close()
    assert tokens[0] != tokens[1]


def test_a_trace_of_a_huge_catalog_is_bounded_and_says_so() -> None:
    names = [f"big_tool_{n:05d}" for n in range(10_000)]
    trace = ToolResolutionTrace(tool_names_advertised=names[:3], allowlist_filtered_out=names[3:])
    stored = trace.to_dict()
    assert stored["capped"] is True
    assert stored["allowlist_filtered_out_count"] == 9_997
    assert len(stored["allowlist_filtered_out"]) == SAMPLE
    assert stored["tool_names_advertised"] == names[:3]
    assert len(json.dumps(stored)) < 5_000
    assert ToolResolutionTrace.from_dict(stored).tool_names_advertised == names[:3]
    assert ToolResolutionTrace(tool_names_advertised=names[:3]).to_dict()["capped"] is False


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files; see the URI test")
def test_serving_a_read_only_ledger_file_says_so_in_one_line(tmp_path: Path) -> None:
    ledger = tmp_path / "ro.db"
    App(Settings(home=tmp_path, database_url=f"sqlite:///{ledger}")).store.close()
    ledger.chmod(0o400)
    _assert_one_line_refusal(tmp_path, f"sqlite:///{ledger}")


def test_serving_a_read_only_ledger_says_so_in_one_line(tmp_path: Path) -> None:
    ledger = tmp_path / "ro.db"
    App(Settings(home=tmp_path, database_url=f"sqlite:///{ledger}")).store.close()
    _assert_one_line_refusal(tmp_path, f"sqlite:///file:{ledger}?mode=ro&uri=true")


def _assert_one_line_refusal(home: Path, url: str) -> None:
    env = os.environ | {"CAIRN_HOME": str(home), "CAIRN_DATABASE_URL": url}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cairn"), "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Cairn serving" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "cannot be written" in lines[0]
