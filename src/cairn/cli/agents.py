"""``cairn agent …``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cairn.cli.context import CliContext, parse_json_option, pass_cli, print_json, run_async
from cairn.errors import InvalidJSON, UsageError

RUN_STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
RUN_KINDS = ["trigger", "manual", "test", "oneshot"]


@click.group()
def agent() -> None:
    """Create, inspect, test and list the runs of agents."""


def _settings_options(function: Any) -> Any:
    options = [
        click.option("--backend", help="Model backend: scripted, anthropic, openai, google."),
        click.option("--model", help="Model name for the backend."),
        click.option("--temperature", type=float),
        click.option("--max-tokens", type=int),
        click.option("--max-turns", type=int, help="Model turns before the run fails."),
        click.option("--timeout-s", type=float, help="Seconds before the run fails."),
        click.option("--base-url", help="OpenAI-compatible server URL."),
        click.option("--script", "script_json", help="Scripted-backend script, JSON."),
        click.option(
            "--script-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Scripted-backend script, a JSON file (docs/scripted.md).",
        ),
        click.option("--tool-sources", help='JSON list of source kinds/ids, or "default".'),
        click.option("--tool-allowlist", help="JSON list of tool names (or patterns); [] = all."),
        click.option("--prompt", help="System prompt text."),
        click.option(
            "--prompt-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="System prompt from a file.",
        ),
        click.option("--name"),
        click.option("--description"),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _string_list(value: str | None, what: str) -> list[str] | None:
    data = parse_json_option(value, what)
    if data is None:
        return None
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise InvalidJSON(f"{what} must be a JSON list of strings, e.g. '[\"clock_now\"]'")
    return data


def _tool_sources(value: str | None) -> Any:
    if value is None:
        return "UNSET"
    if value.strip() in ("default", "null"):
        return None
    return _string_list(value, "--tool-sources")


def _prompt(prompt: str | None, prompt_file: Path | None) -> str | None:
    if prompt is not None and prompt_file is not None:
        raise UsageError("pass --prompt or --prompt-file, not both")
    if prompt_file is not None:
        return prompt_file.read_text(encoding="utf-8")
    return prompt


def _settings_changes(options: dict[str, Any]) -> dict[str, Any]:
    changes = {
        key: options[key]
        for key in (
            "backend",
            "model",
            "temperature",
            "max_tokens",
            "max_turns",
            "timeout_s",
            "base_url",
        )
        if options.get(key) is not None
    }
    if options.get("script_json") is not None:
        changes["script"] = parse_json_option(options["script_json"], "--script")
    if options.get("script_file") is not None:
        changes["script"] = parse_json_option(
            options["script_file"].read_text(encoding="utf-8"), str(options["script_file"])
        )
    return changes


def _print_warnings(warnings: list[str]) -> None:
    if warnings:
        from cairn.cli.render import warn

        for line in warnings:
            warn(line)


@agent.command("create")
@click.argument("slug")
@_settings_options
@click.option("--json", "as_json", is_flag=True, help="Print the agent as JSON.")
@pass_cli
def create(cli: CliContext, /, slug: str, as_json: bool, **options: Any) -> None:
    """Create agent SLUG from flags or a prompt file."""
    from cairn.domain.agents import ModelSettings
    from cairn.services.agents import AgentSpec, create_agent

    prompt = _prompt(options["prompt"], options["prompt_file"])
    if prompt is None:
        raise UsageError("an agent needs a system prompt: pass --prompt or --prompt-file")
    sources = _tool_sources(options["tool_sources"])
    spec = AgentSpec(
        slug=slug,
        system_prompt=prompt,
        name=options["name"],
        description=options["description"] or "",
        tool_sources=None if sources == "UNSET" else sources,
        tool_allowlist=_string_list(options["tool_allowlist"], "--tool-allowlist") or [],
        model_settings=ModelSettings.from_dict(_settings_changes(options)),
    )
    created, warnings = run_async(create_agent, cli.app, cli.sandbox, spec)
    _print_warnings(warnings)
    if as_json:
        print_json(created.to_dict() | {"warnings": warnings})
    else:
        click.echo(f"created agent {created.slug} ({created.agent_id})")


@agent.command("update")
@click.argument("slug")
@_settings_options
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def update(cli: CliContext, /, slug: str, as_json: bool, **options: Any) -> None:
    """Change only the named fields of agent SLUG (a new prompt bumps its version)."""
    from cairn.services.agents import AgentChanges, update_agent

    changes = AgentChanges(
        name=options["name"],
        description=options["description"],
        system_prompt=_prompt(options["prompt"], options["prompt_file"]),
        tool_sources=_tool_sources(options["tool_sources"]),
        tool_allowlist=_string_list(options["tool_allowlist"], "--tool-allowlist"),
        model_settings=_settings_changes(options) or None,
    )
    updated, warnings = run_async(update_agent, cli.app, cli.sandbox, slug, changes)
    _print_warnings(warnings)
    if as_json:
        print_json(updated.to_dict() | {"warnings": warnings})
    else:
        click.echo(f"updated agent {updated.slug} (version {updated.version})")


@agent.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def list_(cli: CliContext, as_json: bool) -> None:
    """List the sandbox's agents."""
    from cairn.services.agents import list_agents

    agents = list_agents(cli.app, cli.sandbox)
    if as_json:
        print_json([a.to_dict() for a in agents])
    else:
        from cairn.cli.render import agents_table

        agents_table(agents)


@agent.command("show")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def show(cli: CliContext, slug: str, as_json: bool) -> None:
    """Show agent SLUG's configuration."""
    from cairn.services.agents import get_agent

    found = get_agent(cli.app, cli.sandbox, slug)
    if as_json:
        print_json(found.to_dict())
    else:
        from cairn.cli.render import agent_detail

        agent_detail(found)


@agent.command("archive")
@click.argument("slug")
@pass_cli
def archive(cli: CliContext, slug: str) -> None:
    """Archive agent SLUG: triggers never fire it (reversible with unarchive)."""
    from cairn.services.agents import set_archived

    set_archived(cli.app, cli.sandbox, slug, True)
    click.echo(f"archived agent {slug}")


@agent.command("unarchive")
@click.argument("slug")
@pass_cli
def unarchive(cli: CliContext, slug: str) -> None:
    """Restore an archived agent."""
    from cairn.services.agents import set_archived

    set_archived(cli.app, cli.sandbox, slug, False)
    click.echo(f"unarchived agent {slug}")


@agent.command("tools")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def tools(cli: CliContext, slug: str, as_json: bool) -> None:
    """The tools SLUG would see right now, and why (without running it)."""
    from cairn.services.agents import agent_catalog

    catalog = run_async(agent_catalog, cli.app, cli.sandbox, slug)
    if as_json:
        print_json(catalog.to_dict())
        return
    from cairn.cli.render import console, trace_view

    if catalog.tools:
        for tool in catalog.tools:
            console.print(f"[bold]{tool['name']}[/]  {tool['description']}")
    else:
        console.print("[bold red]no tools would be advertised[/]")
    trace_view(catalog.trace)


@agent.command("test")
@click.argument("slug")
@click.option("--event-payload", "payload_json", default="{}", help="The fake event, JSON.")
@click.option(
    "--event-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The fake event from a JSON file.",
)
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def test(
    cli: CliContext, slug: str, payload_json: str, event_file: Path | None, as_json: bool
) -> None:
    """Test-fire SLUG with a fake event, wait, and show the run. Exit 1 if the run failed."""
    from cairn.services.runs import fire_agent

    if event_file is not None:
        payload_json = event_file.read_text(encoding="utf-8")
    payload = parse_json_option(payload_json, "--event-payload")
    run = run_async(fire_agent, cli.app, cli.sandbox, slug, payload, kind="test")
    if as_json:
        print_json(run.to_dict())
    else:
        from cairn.cli.render import run_detail

        run_detail(run)
    if run.status != "succeeded":
        raise SystemExit(1)


@agent.command("runs")
@click.argument("slug")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--status", type=click.Choice(RUN_STATUSES))
@click.option("--trigger", "trigger_id", help="Only runs fired by this trigger id.")
@click.option("--kind", type=click.Choice(RUN_KINDS))
@click.option("--since", help="Only runs newer than this, e.g. 24h, 7d.")
@click.option("--before", help="Cursor: runs older than this run_id (the next page).")
@click.option("--json", "as_json", is_flag=True)
@pass_cli
def runs(
    cli: CliContext,
    slug: str,
    limit: int,
    status: Any,
    trigger_id: str | None,
    kind: Any,
    since: str | None,
    before: str | None,
    as_json: bool,
) -> None:
    """Recent runs of SLUG, newest first."""
    from cairn.durations import parse_duration
    from cairn.services.runs import RunQuery, list_runs

    query = RunQuery(
        agent_slug=slug,
        status=status,
        trigger_id=trigger_id,
        kind=kind,
        before=before,
        since_s=parse_duration(since) if since else None,
        limit=limit,
    )
    found = list_runs(cli.app, cli.sandbox, query)
    if as_json:
        click.echo(json.dumps([run.to_dict() for run in found], default=str))
    else:
        from cairn.cli.render import runs_table

        runs_table(found)
