"""``cairn run "<prompt>"``: one agent turn from the shell, streamed, with a ledger row."""

from __future__ import annotations

import json
from typing import Any

import click

from cairn.cli.context import CliContext, parse_json_option, pass_cli


@click.command()
@click.argument("prompt")
@click.option("--agent", "slug", help="Fire this agent with the prompt as its event.")
@click.option("--backend", help="Without --agent: the model backend (default scripted).")
@click.option("--model", help="Without --agent: the model.")
@click.option("--base-url", help="Without --agent: an OpenAI-compatible server.")
@click.option("--sources", help="Without --agent: JSON list of sources (default: all).")
@click.option("--allow", "allowlist", help="Without --agent: JSON list of allowed tools.")
@click.option("--script", help="Without --agent, scripted backend: the script, JSON.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@pass_cli
def run(
    cli: CliContext,
    prompt: str,
    slug: str | None,
    backend: str | None,
    model: str | None,
    base_url: str | None,
    sources: str | None,
    allowlist: str | None,
    script: str | None,
    as_json: bool,
) -> None:
    """Run one turn on PROMPT using the connected sources as tools; leaves a 'oneshot' run.
    Each run uses only the settings it is given. Exit 1 unless the run succeeded.

    \b
    Examples:
      cairn run "What time is it?"
      cairn run "Look up order A-1001" --backend openai --model gpt-4.1-mini
      cairn run "Summarise" --agent support
    """
    from cairn.cli.render import follow_events

    body: dict[str, Any] = {"prompt": prompt, "agent": slug, "wait": False}
    if slug is None:
        settings = {
            key: value
            for key, value in (("backend", backend), ("model", model), ("base_url", base_url))
            if value is not None
        }
        if script is not None:
            settings["script"] = parse_json_option(script, "--script")
        body["model_settings"] = settings
        body["tool_sources"] = parse_json_option(sources, "--sources")
        body["tool_allowlist"] = parse_json_option(allowlist, "--allow") or []
    accepted = cli.call("oneshot", body=body)
    if not as_json:
        click.echo(f"{accepted['run_id']}", err=True)
    status = follow_events(cli.stream("stream_run", run_id=accepted["run_id"]), as_json)
    if as_json and status is None:
        click.echo(json.dumps({"run_id": accepted["run_id"]}))
    if status != "succeeded":
        raise SystemExit(1)
