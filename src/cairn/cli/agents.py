"""``cairn agent …``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cairn.cli.context import (
    CliContext,
    option_set,
    output,
    parse_json_option,
    pass_cli,
    print_json,
    read_text_file,
    waiting,
)
from cairn.cli.runs import failed, run_filters
from cairn.errors import InvalidJSON, UsageError


@click.group()
def agent() -> None:
    """Create, inspect, test and list the runs of agents."""


_READABLE_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)

_settings_options = option_set(
    click.option("--backend", help="Model backend: scripted, anthropic, openai, google."),
    click.option("--model", help="Model name for the backend."),
    click.option("--temperature", type=float, help="Sampling temperature."),
    click.option("--max-tokens", type=int, help="Output tokens per model turn at most."),
    click.option("--max-turns", type=int, help="Model turns before the run fails."),
    click.option("--timeout-s", type=float, help="Seconds before the run fails."),
    click.option("--base-url", help="OpenAI-compatible server URL."),
    click.option("--script", "script_json", help="Scripted-backend script, JSON."),
    click.option(
        "--script-file",
        type=_READABLE_FILE,
        help="Scripted-backend script, a JSON file (docs/scripted.md).",
    ),
    click.option("--tool-sources", help='JSON list of source kinds/ids, or "default".'),
    click.option("--tool-allowlist", help="JSON list of tool names (or patterns); [] = all."),
    click.option("--prompt", help="System prompt text."),
    click.option(
        "--prompt-file",
        type=_READABLE_FILE,
        help="System prompt from a file.",
    ),
    click.option("--name", help="A display name."),
    click.option("--description", help="What the agent is for."),
)


def _string_list(value: str | None, what: str) -> list[str] | None:
    data = parse_json_option(value, what)
    if data is None:
        return None
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise InvalidJSON(f"{what} must be a JSON list of strings, e.g. '[\"clock_now\"]'")
    return data


def _prompt(prompt: str | None, prompt_file: Path | None) -> str | None:
    if prompt is not None and prompt_file is not None:
        raise UsageError("pass --prompt or --prompt-file, not both")
    if prompt_file is not None:
        return read_text_file(prompt_file, "--prompt-file")
    return prompt


SETTINGS = ("backend", "model", "temperature", "max_tokens", "max_turns", "timeout_s", "base_url")
"""The model settings given by an option of the same name."""


def _settings_changes(options: dict[str, Any]) -> dict[str, Any]:
    changes = {key: options[key] for key in SETTINGS if options.get(key) is not None}
    if options.get("script_json") is not None:
        changes["script"] = parse_json_option(options["script_json"], "--script")
    if options.get("script_file") is not None:
        path = options["script_file"]
        changes["script"] = parse_json_option(
            read_text_file(path, "--script-file"), f"--script-file {str(path)!r}"
        )
    return changes


def _body(options: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    prompt = _prompt(options["prompt"], options["prompt_file"])
    if prompt is not None:
        body["system_prompt"] = prompt
    for key in ("name", "description"):
        if options[key] is not None:
            body[key] = options[key]
    sources = options["tool_sources"]
    if sources is not None:  # "default" (or "null"): the sandbox's default sources
        default = sources.strip() in ("default", "null")
        body["tool_sources"] = None if default else _string_list(sources, "--tool-sources")
    allowlist = _string_list(options["tool_allowlist"], "--tool-allowlist")
    if allowlist is not None:
        body["tool_allowlist"] = allowlist
    settings = _settings_changes(options)
    if settings:
        body["model_settings"] = settings
    return body


def _print_agent(data: dict[str, Any], as_json: bool, verb: str) -> None:
    if data.get("warnings"):
        from cairn.cli.render import warn

        for line in data["warnings"]:
            warn(line)
    if as_json:
        print_json(data)
    elif verb == "created":
        click.echo(f"created agent {data['slug']} ({data['agent_id']})")
    else:
        click.echo(f"{verb} agent {data['slug']} (version {data['version']})")


@agent.command("create")
@click.argument("slug")
@_settings_options
@click.option("--json", "as_json", is_flag=True, help="Print the agent as JSON.")
@pass_cli
def create(cli: CliContext, /, slug: str, as_json: bool, **options: Any) -> None:
    """Create agent SLUG from flags or a prompt file.

    \b
    Examples:
      cairn agent create support --prompt-file prompt.md --tool-allowlist '["orders_*"]'
      cairn agent create helper --prompt 'You help.' --backend openai --model gpt-4.1-mini
    """
    body = _body(options)
    if "system_prompt" not in body:
        raise UsageError("an agent needs a system prompt: pass --prompt or --prompt-file")
    _print_agent(cli.call("create_agent", body={"slug": slug, **body}), as_json, "created")


@agent.command("update")
@click.argument("slug")
@_settings_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def update(cli: CliContext, /, slug: str, as_json: bool, **options: Any) -> None:
    """Change only the named fields of agent SLUG; any change to what it does (prompt, model
    settings, script, sources, allowlist) bumps its version.

    \b
    Examples:
      cairn agent update support --max-turns 4
      cairn agent update support --tool-allowlist '["orders_lookup_order"]'
    """
    _print_agent(cli.call("update_agent", slug=slug, body=_body(options)), as_json, "updated")


@agent.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also the internal 'oneshot' agent.")
@output("render.agents_table", help="Print the agents as JSON.")
@pass_cli
def list_(cli: CliContext, show_all: bool) -> Any:
    """List the sandbox's agents (archived ones too, marked). The archived agent behind
    'cairn run' is left out unless --all."""
    agents = cli.call("list_agents")
    if show_all:
        return agents
    return [a for a in agents if not (a["slug"] == "oneshot" and a["status"] == "archived")]


@agent.command("show")
@click.argument("slug")
@output("render.agent_detail")
@pass_cli
def show(cli: CliContext, slug: str) -> Any:
    """Show agent SLUG's configuration."""
    return cli.call("get_agent", slug=slug)


@agent.command("archive")
@click.argument("slug")
@pass_cli
def archive(cli: CliContext, slug: str) -> None:
    """Archive agent SLUG: triggers never fire it (reversible with unarchive)."""
    cli.call("archive_agent", slug=slug)
    click.echo(f"archived agent {slug}")


@agent.command("unarchive")
@click.argument("slug")
@pass_cli
def unarchive(cli: CliContext, slug: str) -> None:
    """Restore an archived agent."""
    cli.call("unarchive_agent", slug=slug)
    click.echo(f"unarchived agent {slug}")


@agent.command("tools")
@click.argument("slug")
@output("render.catalog")
@pass_cli
def tools(cli: CliContext, slug: str) -> Any:
    """The tools SLUG would see right now, and why (without running it).

    \b
    Examples:
      cairn agent tools support
      cairn agent tools support --json
    """
    return cli.call("agent_tools", slug=slug)


def _payload(payload_json: str, event_file: Path | None) -> Any:
    if event_file is not None:
        text = read_text_file(event_file, "--event-file")
        return parse_json_option(text, f"--event-file {str(event_file)!r}")
    return parse_json_option(payload_json, "--event-payload")


def _event_options(event: str) -> Callable[[Any], Any]:
    """``--event-payload`` and ``--event-file``, for ``event`` (the fake event, the event)."""
    return option_set(
        click.option("--event-payload", "payload_json", default="{}", help=f"{event}, JSON."),
        click.option("--event-file", type=_READABLE_FILE, help=f"{event} from a JSON file."),
    )


@agent.command("test")
@click.argument("slug")
@_event_options("The fake event")
@output("render.run_detail", fails=failed)
@pass_cli
def test(cli: CliContext, slug: str, payload_json: str, event_file: Path | None) -> Any:
    """Test-fire SLUG with a fake event, wait, and show the run. Exit 1 if the run failed.

    \b
    Examples:
      cairn agent test support --event-payload '{"order_id": "A-1001"}'
      cairn agent test support --event-file event.json --json
    """
    payload = _payload(payload_json, event_file)
    with waiting(f"test-firing {slug}"):
        return cli.call("test_agent", slug=slug, body={"event_payload": payload})


@agent.command("fire")
@click.argument("slug")
@_event_options("The event")
@output(lambda accepted: click.echo(accepted["run_id"]))
@pass_cli
def fire(cli: CliContext, slug: str, payload_json: str, event_file: Path | None) -> Any:
    """Fire SLUG without waiting (a manual run); prints the run id to follow.

    \b
    Examples:
      RUN_ID=$(cairn agent fire support --event-payload '{"order_id": "A-1002"}')
      cairn runs follow "$RUN_ID"
    """
    payload = _payload(payload_json, event_file)
    return cli.call("fire_agent", slug=slug, body={"event_payload": payload})


@agent.command("runs")
@click.argument("slug")
@run_filters
@click.option("--follow", is_flag=True, help="Keep showing runs as they start and finish.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@pass_cli
def runs(cli: CliContext, /, slug: str, follow: bool, as_json: bool, **filters: Any) -> None:
    """Recent runs of SLUG, newest first ('--follow': then live).

    \b
    Examples:
      cairn agent runs support --status failed --since 24h
      cairn agent runs support --follow
    """
    page = cli.call("list_agent_runs", slug=slug, **filters)
    if as_json and not follow:
        click.echo(json.dumps(page["runs"], default=str))
        return
    if not follow:
        from cairn.cli.render import runs_table

        runs_table(page["runs"], filters["limit"])
        return
    from cairn.cli.render import follow_runs

    follow_runs(cli.stream("stream_agent_runs", slug=slug), page["runs"], as_json)


from cairn.cli.triggers import trigger  # noqa: E402 - a subgroup of ``agent``

agent.add_command(trigger)


@agent.command("why-not-fired")
@click.argument("slug")
@output("doctor.show_explanation")
@pass_cli
def why_not_fired(cli: CliContext, slug: str) -> Any:
    """Why SLUG did (not) fire on the last event of any source bound to it: each trigger's
    decision, no trigger, or no event at all."""
    return cli.call("why_not_fired", slug=slug)
