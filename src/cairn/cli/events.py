"""``cairn events …``: what sources received and why each trigger did or did not fire."""

from __future__ import annotations

from typing import Any

import click

from cairn.cli.context import CliContext, output, pass_cli


@click.group()
def events() -> None:
    """Events sources received, and every trigger's decision about each."""


def _decision_line(decision: dict[str, Any]) -> str:
    kind = decision["decision"]
    detail = decision.get("detail") or {}
    if kind == "fired":
        return f"fired run {decision['run_id']}"
    if kind == "filtered_out":
        if detail.get("filter") == "event_type_filter":
            return f"filtered out: event type {detail.get('actual')!r} ≠ {detail.get('expected')!r}"
        state = "missing" if detail.get("missing") else f"was {detail.get('actual')!r}"
        return f"filtered out: {detail.get('field')} {state}, wanted {detail.get('expected')!r}"
    if kind == "rate_limited":
        return (
            f"rate-limited: {detail.get('fires_in_window')} fires since "
            f"{detail.get('window_started_at')} (cap {detail.get('rate_limit_per_hour')}/hour)"
        )
    if kind == "agent_archived":
        return f"agent {detail.get('agent')} is archived"
    if kind == "busy":
        return f"not fired: {detail.get('message')}"
    return str(kind)


def _arrival(event: dict[str, Any]) -> str | None:
    """``via github delivery 72d3…; type from X-GitHub-Event header + body.action``."""
    delivery = event.get("delivery") or {}
    if not delivery or delivery.get("provider") == "cairn":
        return None
    said = f"via {delivery['provider']}"
    if delivery.get("delivery_id"):
        said += f" delivery {delivery['delivery_id']}"
    if delivery.get("type_from") and event.get("event_type"):
        said += f"; type from {delivery['type_from']}"
    if delivery.get("secret_used") == "previous":
        said += "; signed with the previous secret (rotation window)"
    return said


def _print_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        _print_event(event)


def _print_event(event: dict[str, Any]) -> None:
    head = f"{event['event_id']}  {event['received_at'][:19] if event['received_at'] else ''}  "
    arrival = _arrival(event)
    if event["status"] == "rejected":
        click.echo(head + f"REJECTED: {event['reject_reason']}")
        return
    click.echo(head + f"{event['event_type']}  (source {event['source_id']})")
    if arrival:
        click.echo(f"    {arrival}")
    if (event.get("delivery") or {}).get("handshake"):
        click.echo(f"    {event['delivery']['handshake']} answered; handshakes never fire")
        return
    decisions = event.get("decisions") or []
    if not decisions:
        click.echo("    no trigger on this source")
    for decision in decisions:
        click.echo(f"    {decision['trigger_id']}: {_decision_line(decision)}")


@events.command("list")
@click.option("--source", help="Only this source (id or label).")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 500), help="Events per page."
)
@click.option("--before", help="Cursor: events older than this event_id.")
@output(_print_events)
@pass_cli
def list_(cli: CliContext, source: str | None, limit: int, before: str | None) -> Any:
    """Recent events, newest first, each with every trigger's decision."""
    return cli.call("list_events", source=source, limit=limit, before=before)["events"]


def _event_detail(event: dict[str, Any]) -> None:
    _print_event(event)
    if event["payload"] is not None:
        import json

        click.echo("payload:")
        click.echo(json.dumps(event["payload"], indent=2, default=str))


@events.command("show")
@click.argument("event_id")
@output(_event_detail)
@pass_cli
def show(cli: CliContext, event_id: str) -> Any:
    """One event: its payload and why each trigger did or did not fire."""
    return cli.call("get_event", event_id=event_id)


@events.command("explain")
@click.argument("event_id")
@output("doctor.show_explanation")
@pass_cli
def explain(cli: CliContext, event_id: str) -> Any:
    """Why EVENT_ID fired what it fired, or nothing: each trigger's decision in plain English
    with the command that changes it, or why the delivery was refused."""
    return cli.call("explain_event", event_id=event_id)
