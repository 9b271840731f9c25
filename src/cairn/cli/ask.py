"""``cairn ask "<question>"``: the Concierge, in plain English."""

from __future__ import annotations

import click

from cairn.cli.context import CliContext, pass_cli, print_json, waiting
from cairn.errors import UsageError


@click.command("ask")
@click.argument("question", nargs=-1)
@click.option(
    "--offline", is_flag=True, help="Use the offline interpreter even if a Concierge agent exists."
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option(
    "--yes", "yes", is_flag=True, help="Confirm a test fire of an agent whose tools may act."
)
@click.option(
    "--print-prompt",
    is_flag=True,
    help="Print the default Concierge agent prompt (for cairn agent create concierge).",
)
@pass_cli
def ask(
    cli: CliContext,
    question: tuple[str, ...],
    offline: bool,
    as_json: bool,
    yes: bool,
    print_prompt: bool,
) -> None:
    """Ask the Concierge a QUESTION about your agents, runs, triggers and usage.

    \b
    cairn ask "Show me the last 20 runs for the support agent"
    cairn ask "Why didn't run run_01J… use any tools?"
    cairn ask 'Test the triage agent with this fake event: {"title": "broken checkout"}'
    cairn ask "What tools does my support agent have right now?"
    cairn ask "Why didn't the triage agent fire on the last event?"
    cairn ask "Which agent used the most tokens today?"

    It answers from the ledger and cites run ids; it may pause a trigger when asked (an
    editor's key is needed), and never destroys anything: it prints the command instead.
    """
    if print_prompt:
        from cairn.services.concierge.prompt import DEFAULT_PROMPT

        click.echo(DEFAULT_PROMPT, nl=False)
        return
    text = " ".join(question).strip()
    if not text:
        raise UsageError('ask a question, e.g. cairn ask "Which agent used the most tokens today?"')
    with waiting("Asking the Concierge…"):
        answer = cli.call("ask", body={"question": text, "offline": offline, "yes": yes})
    if as_json:
        print_json(answer)
        return
    click.echo(answer["text"])
    commands = [c for c in answer["commands"] if c not in answer["text"]]
    if commands:
        click.echo("\nCommands:")
        for command in commands:
            click.echo(f"  {command}")
    who = (
        f"the Concierge agent, run {answer['concierge_run_id']}"
        if answer["mode"] == "agent"
        else "the offline interpreter"
    )
    click.echo(click.style(f"\n(answered by {who})", dim=True), err=True)
