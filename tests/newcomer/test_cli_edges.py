"""The CLI's sharp edges a newcomer hit (issue 15, points 4, 5, 7, 8, 11, 13 and 16)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import click
import httpx
import pytest

from cairn.cli.main import cli as cairn_group
from tests.newcomer.conftest import Cli
from tests.newcomer.serving import cairn, clean_env, recorder, serve

ROOT = Path(__file__).resolve().parents[2]


# --- point 7: `cairn run` is not sticky, and its agent is not in `agent list` -------------


def test_cairn_run_uses_only_the_settings_it_is_given(cli: Cli) -> None:
    custom = cli("run", "hello", "--script", '{"turns": [{"text": "CUSTOM"}]}', "--json")
    assert custom.exit_code == 0, custom.stderr
    assert "CUSTOM" in custom.stdout
    plain = cli("run", "hello", "--json")
    assert plain.exit_code == 0, plain.stderr
    assert "CUSTOM" not in plain.stdout, "the previous run's script stuck"
    settings = cli("agent", "show", "oneshot", "--json").json()["model_settings"]
    assert settings.get("script") is None
    assert [a["slug"] for a in cli("agent", "list", "--json").json()] == []
    assert [a["slug"] for a in cli("agent", "list", "--all", "--json").json()] == ["oneshot"]


# --- point 8: an MCP source's namespace is its label ------------------------------------


def test_an_mcp_sources_tools_are_named_after_its_label(cli: Cli) -> None:
    added = cli(
        "source", "add", "shop", "--command", sys.executable,
        "--arg", "-m", "--arg", "cairn.demo.orders_server", "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    made = cli("agent", "create", "bot", "--prompt", "You help.", "--tool-allowlist", '["shop_*"]')
    assert made.exit_code == 0 and "matches no tool" not in made.stderr, made.stderr
    tools = cli("agent", "tools", "bot", "--json").json()
    assert "shop_lookup_order" in {tool["name"] for tool in tools["tools"]}


# --- point 13: `cairn runs list` across agents ------------------------------------------


def test_runs_list_shows_every_agents_runs_newest_first(cli: Cli) -> None:
    for slug in ("alpha", "beta"):
        assert cli("agent", "create", slug, "--prompt", "You help.").exit_code == 0
        assert cli("agent", "test", slug).exit_code == 0
    listed = cli("runs", "list", "--json").json()
    assert [run["agent_slug"] for run in listed] == ["beta", "alpha"]
    only = cli("runs", "list", "--agent", "alpha", "--json").json()
    assert [run["agent_slug"] for run in only] == ["alpha"]
    table = cli("runs", "list")
    assert "alpha" in table.stdout and "beta" in table.stdout
    assert "┃" not in table.stdout and "│" not in table.stdout, "piped tables have no box"


# --- point 16: help texts, and one rule for removal verbs -------------------------------


def _leaves(
    group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += _leaves(command, ctx, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


def test_every_option_has_help_and_no_markup_leaks_into_help() -> None:
    ctx = click.Context(cairn_group)
    for path, command in _leaves(cairn_group, ctx):
        text = command.get_help(click.Context(command, info_name=" ".join(path)))
        assert "``" not in text, f"cairn {' '.join(path)}: reStructuredText in help"
        for param in command.params:
            if isinstance(param, click.Option) and "--help" not in param.opts:
                assert param.help, f"cairn {' '.join(path)} {param.opts[-1]} has no help"


@pytest.mark.parametrize(
    "path",
    [
        "agent create", "agent test", "agent fire", "agent runs", "agent tools", "agent update",
        "runs list", "runs show", "runs follow", "runs prune", "run", "serve", "source add",
        "agent trigger create",
    ],
)  # fmt: skip
def test_the_everyday_commands_show_examples(path: str) -> None:
    ctx = click.Context(cairn_group)
    command: click.Command | None = cairn_group
    for name in path.split():
        assert isinstance(command, click.Group)
        command = command.get_command(ctx, name)
    assert command is not None
    assert re.search(
        r"Examples:\n +.*cairn ", command.get_help(click.Context(command, info_name=path))
    )


def test_every_irreversible_verb_asks_or_needs_yes_and_a_repeat_says_so(cli: Cli) -> None:
    key = cli("key", "create", "--json").json()["key"]["key_id"]
    assert cli("source", "webhook", "add", "hooks").exit_code == 0
    assert cli("agent", "create", "bot", "--prompt", "You help.").exit_code == 0
    trigger = cli("agent", "trigger", "create", "bot", "--source", "hooks", "-q").stdout.strip()
    assert cli("credential", "set", "openai", "--api-key", "sk-test").exit_code == 0
    targets = [
        ["key", "revoke", key],
        ["source", "revoke", "hooks"],
        ["agent", "trigger", "destroy", trigger],
        ["credential", "remove", "openai"],
    ]
    for target in targets:
        unasked = cli(*target)
        assert unasked.exit_code == 2 and "pass --yes" in unasked.stderr, target
        assert cli(*target, "--yes").exit_code == 0, target
        again = cli(*target, "--yes")
        assert again.exit_code == 2, (target, again.stdout)
        assert again.stderr.count("\n") == 1


# --- point 4: `make run PORT=…`, and the port is checked before the demo loads -----------


def test_make_run_takes_a_port() -> None:
    dry = subprocess.run(
        ["make", "-n", "run", "PORT=8766"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert "serve --demo --local-login --port 8766" in dry.stdout, dry.stdout + dry.stderr


def test_a_port_in_use_is_refused_before_anything_is_loaded(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        home = tmp_path / "home"
        result = cairn("serve", "--demo", "--port", str(port), env=clean_env(home), timeout_s=60)
    assert result.returncode == 2, result.stderr
    assert f"port {port} on 127.0.0.1 is not free" in result.stderr
    assert "make run PORT=" in result.stderr
    assert "Cairn serving" not in result.stdout and "demo loaded" not in result.stdout
    assert not (home / "cairn.db").exists(), "nothing was loaded"


# --- point 5: `serve --demo` opens the dashboard on the demo sandbox ---------------------


@pytest.mark.slow
def test_serve_demo_opens_the_dashboard_on_the_demo_sandbox(tmp_path: Path) -> None:
    with serve(tmp_path / "home", "--demo", "--local-login", within_s=180) as server:
        page = httpx.get(f"{server.url}/runs", timeout=60)
        assert page.status_code == 200
        assert "support" in page.text and "triage" in page.text
        assert "(sandbox demo)" in server.log.read_text()


# --- point 11: `cairn demo` and late sandboxes with CAIRN_URL ----------------------------


@pytest.mark.slow
def test_cairn_demo_with_cairn_url_loads_only_for_its_own_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve(home) as server, recorder() as stranger:
        env = clean_env(home)
        refused = cairn("demo", env=env | {"CAIRN_URL": stranger.url})
        assert refused.returncode == 2, refused.stderr
        assert "does not run from this CAIRN_HOME" in refused.stderr
        assert not any(h.get("Authorization") for _m, _p, h in stranger.requests)

        loaded = cairn("demo", env=env | {"CAIRN_URL": server.url}, timeout_s=180)
        assert loaded.returncode == 0, loaded.stderr
        remote = env | {"CAIRN_URL": server.url, "CAIRN_SANDBOX": "demo"}
        listed = cairn("agent", "list", "--json", env=remote)
        assert listed.returncode == 0, listed.stderr
        assert "support" in listed.stdout

        late = cairn("sandbox", "create", "late", env=env)  # in-process, after the start
        assert late.returncode == 0, late.stderr
        reached = cairn("--sandbox", "late", "agent", "list", "--json", env=remote)
        assert reached.returncode == 0, reached.stderr
        assert reached.stdout.strip() == "[]"
