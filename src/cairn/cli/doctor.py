"""``cairn doctor``, and the rendering ``runs explain``, ``events explain`` and
``agent why-not-fired`` share.

``doctor`` exits 1 when anything needs fixing (an error or a warning), so cron and CI can
run it; ``--json`` prints the report either way.
"""

from __future__ import annotations

import json
from typing import Any

import click

from cairn.cli.context import CliContext, output, pass_cli, waiting

_MARKS = {"error": ("✗", "bold red"), "warning": ("!", "bold yellow"), "info": ("·", "green")}


def _print_findings(findings: list[dict[str, Any]], *, with_subject: bool) -> None:
    """Each finding: its severity and code, the cause, the fix, then its evidence."""
    from rich.text import Text

    from cairn.cli.render import console

    for finding in findings:
        mark, style = _MARKS.get(finding["severity"], ("?", ""))
        head = Text(f"{mark} ", style=style)
        head.append(finding["severity"], style=style)
        head.append(f"  {finding['code']}", style="bold")
        if with_subject and finding.get("subject"):
            head.append(f"  [{finding['subject']}]")
        fix = Text("  fix: ", style="bold")
        fix.append(finding["fix"])
        console.print()
        for line in (head, Text("  " + finding["cause"]), fix):
            console.print(line)
        for key, value in (finding.get("evidence") or {}).items():
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
            shown = " ".join(shown.split())
            if len(shown) > 140:
                shown = shown[:139] + "…"
            console.print(Text(f"    {key}: {shown}", style="dim"))


def show_explanation(explanation: dict[str, Any]) -> None:
    """Print an explanation: the summary, then each finding with its fix and evidence."""
    from rich.text import Text

    from cairn.cli.render import console

    console.print(Text(explanation["summary"], style="bold"))
    _print_findings(explanation["findings"], with_subject=False)


def show_report(report: dict[str, Any]) -> None:
    """Print a doctor report, errors first."""
    from rich.text import Text

    from cairn.cli.render import console

    checked = report.get("checked") or {}
    counted = ", ".join(
        f"{count} {what[:-1] if count == 1 and what.endswith('s') else what}"
        for what, count in checked.items()
    )
    if report["ok"]:
        console.print(Text(f"✓ nothing needs fixing (checked {counted})", style="bold green"))
    else:
        needing = [f for f in report["findings"] if f["severity"] != "info"]
        console.print(
            Text(
                f"{len(needing)} thing{'s' if len(needing) != 1 else ''} to fix "
                f"(checked {counted})",
                style="bold red",
            )
        )
    _print_findings(report["findings"], with_subject=True)


@click.command("doctor")
@click.option("--agent", "slug", help="Only this agent (slug).")
@click.option(
    "--quiet-days",
    default=7.0,
    show_default=True,
    type=click.FloatRange(min=0, max=3650),
    help="A trigger with no fire for this many days is reported as quiet.",
)
@output(show_report, fails=lambda report: not report["ok"])
@pass_cli
def doctor(cli: CliContext, slug: str | None, quiet_days: float) -> Any:
    """Scan for what needs fixing without running anything: stale allowlist entries, sources
    that would be skipped now, paused or quiet triggers, agents whose recent runs mostly fail
    or use no tools, runaway usage. Exits 1 when something needs fixing."""
    with waiting("checking agents, sources and triggers…"):
        return cli.call("doctor", agent=slug, quiet_days=quiet_days)
