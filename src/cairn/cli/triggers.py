"""``cairn agent trigger …``: bind agents to sources' events."""

from __future__ import annotations

import json
from typing import Any

import click

from cairn.cli.context import CliContext, confirm, output, parse_json_option, pass_cli, print_json
from cairn.errors import InvalidJSON, UsageError


@click.group()
def trigger() -> None:
    """Bind agents to sources' events: create, list, show, update, pause, resume, destroy."""


def _filter(value: str | None) -> Any:
    if value is None:
        return None
    data = parse_json_option(value, "--filter")
    if data is not None and not isinstance(data, dict):
        raise InvalidJSON('--filter must be a JSON object, e.g. \'{"channel": "C123"}\'')
    return data


def _trigger_line(data: dict[str, Any], verb: str) -> None:
    cap = data["rate_limit_per_hour"]
    click.echo(
        f"{verb} trigger {data['trigger_id']}: {data['agent_slug']} ← source "
        f"{data['data_source_id']} on {data['event_type_filter']}"
        + (f" where {json.dumps(data['filter_config'])}" if data["filter_config"] else "")
        + (f", at most {cap}/hour" if cap else "")
        + f" [{data['status']}]"
    )


@trigger.command("create")
@click.argument("slug")
@click.option("--source", "source_ref", required=True, help="Source id or label.")
@click.option("--event-type", default="*", show_default=True, help="'*' or one event type.")
@click.option("--filter", "filter_json", help='Payload filter, JSON: {"channel": "C123"}.')
@click.option("--rate-limit", type=int, help="At most this many fires per hour.")
@click.option("--json", "as_json", is_flag=True, help="Print the trigger as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the new trigger's id.")
@pass_cli
def create(
    cli: CliContext,
    slug: str,
    source_ref: str,
    event_type: str,
    filter_json: str | None,
    rate_limit: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Fire agent SLUG on events of a source (a webhook, a schedule, an integration).

    \b
    Examples:
      cairn agent trigger create triage --source github-issues --event-type issue.opened \\
        --filter '{"labels": "bug"}' --rate-limit 10
      cairn agent trigger create support --source nightly --event-type schedule.tick
    """
    body = {
        "data_source_id": source_ref,
        "event_type_filter": event_type,
        "filter_config": _filter(filter_json),
        "rate_limit_per_hour": rate_limit,
    }
    made = cli.call("create_trigger", slug=slug, body=body)
    if quiet:
        click.echo(made["trigger_id"])
    elif as_json:
        print_json(made)
    else:
        _trigger_line(made, "created")


def _triggers_table(found: list[dict[str, Any]]) -> None:
    from cairn.cli.render import Table, console

    table = Table()
    table.add_column("trigger_id", no_wrap=True, min_width=30)
    for header in ("agent", "source", "event type", "filter", "cap/h", "status", "fires", "last"):
        table.add_column(header)
    for item in found:
        table.add_row(
            item["trigger_id"],
            item["agent_slug"] or "",
            item["data_source_id"],
            item["event_type_filter"],
            json.dumps(item["filter_config"]) if item["filter_config"] else "",
            str(item["rate_limit_per_hour"] or ""),
            item["status"],
            str(item["fire_count"]),
            (item["last_fired_at"] or "never")[:19],
        )
    console.print(table)


@trigger.command("list")
@click.argument("slug", required=False)
@output(_triggers_table)
@pass_cli
def list_(cli: CliContext, slug: str | None) -> Any:
    """The triggers of SLUG (or of every agent), with fire counts."""
    return cli.call("list_agent_triggers", slug=slug) if slug else cli.call("list_triggers")


def _trigger_detail(data: dict[str, Any]) -> None:
    _trigger_line(data, "")
    click.echo(f"fired {data['fire_count']} times; last {data['last_fired_at'] or 'never'}")


@trigger.command("show")
@click.argument("trigger_id")
@output(_trigger_detail)
@pass_cli
def show(cli: CliContext, trigger_id: str) -> Any:
    """One trigger, with its fire count and last fire."""
    return cli.call("get_trigger", trigger_id=trigger_id)


@trigger.command("update")
@click.argument("trigger_id")
@click.option("--event-type", help="'*' or one event type.")
@click.option("--filter", "filter_json", help="Payload filter, JSON; 'null' removes it.")
@click.option("--rate-limit", help="Fires per hour; 'none' removes the cap.")
@output(lambda data: _trigger_line(data, "updated"))
@pass_cli
def update(
    cli: CliContext,
    trigger_id: str,
    event_type: str | None,
    filter_json: str | None,
    rate_limit: str | None,
) -> Any:
    """Change only the given fields of a trigger."""
    body: dict[str, Any] = {}
    if event_type is not None:
        body["event_type_filter"] = event_type
    if filter_json is not None:
        body["filter_config"] = _filter(filter_json)
    if rate_limit is not None:
        if rate_limit.lower() == "none":
            body["rate_limit_per_hour"] = None
        elif rate_limit.isdigit():
            body["rate_limit_per_hour"] = int(rate_limit)
        else:
            raise UsageError(f"--rate-limit takes a number or 'none', not {rate_limit!r}")
    return cli.call("update_trigger", trigger_id=trigger_id, body=body)


@trigger.command("pause")
@click.argument("trigger_id")
@pass_cli
def pause(cli: CliContext, trigger_id: str) -> None:
    """Stop firing (events are still recorded, as 'paused'); reversible."""
    data = cli.call("update_trigger", trigger_id=trigger_id, body={"status": "paused"})
    _trigger_line(data, "paused")


@trigger.command("resume")
@click.argument("trigger_id")
@pass_cli
def resume(cli: CliContext, trigger_id: str) -> None:
    """Fire again."""
    data = cli.call("update_trigger", trigger_id=trigger_id, body={"status": "active"})
    _trigger_line(data, "resumed")


@trigger.command("destroy")
@click.argument("trigger_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def destroy(cli: CliContext, trigger_id: str, yes: bool) -> None:
    """Delete a trigger for good (its past decisions stay). Asks first."""
    confirm(f"destroy trigger {trigger_id}? This cannot be undone", yes)
    cli.call("destroy_trigger", trigger_id=trigger_id)
    click.echo(f"destroyed trigger {trigger_id}")
