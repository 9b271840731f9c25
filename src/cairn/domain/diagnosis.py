"""Diagnoses: what ``explain`` and ``doctor`` say, as data.

A ``Finding`` names one cause and its fix, and cites the ledger fields it rests on
(``evidence``, keyed by the run, trace, event or trigger field's own name), so a person can
check it and a program can branch on its ``code``. Codes are a small stable vocabulary
(listed in ``docs/diagnosis.md``); the wording of ``cause`` and ``fix`` may improve.

Severity says what a finding asks of the operator: ``error`` (something is broken and
needs fixing), ``warning`` (probably wrong, worth a look), ``info`` (what happened, for
the record: a run that acted, a trigger that fired). ``doctor`` exits 1 on any error or
warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from cairn.text import record

Severity = Literal["error", "warning", "info"]
ExplanationKind = Literal["run", "event", "agent"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnosed cause: what happened, what to do, and the fields that show it.

    ``subject`` is set by ``doctor`` (which agent, trigger or source the finding is about);
    an explanation's findings are all about its own subject and leave it ``None``."""

    code: str
    severity: Severity
    cause: str
    fix: str
    evidence: dict[str, Any] = field(default_factory=dict)
    subject: str | None = None

    @property
    def needs_fixing(self) -> bool:
        """Errors and warnings do; info findings only report."""
        return self.severity != "info"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``--json``, the API)."""
        return record(self)


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a run, an event or an agent did what it did: one sentence, then the findings
    (the root cause first)."""

    subject: str
    summary: str
    findings: list[Finding]
    kind: ExplanationKind = "run"

    def codes(self) -> list[str]:
        """The findings' codes, in order (handy for tests and scripts)."""
        return [finding.code for finding in self.findings]

    def finding(self, code: str) -> Finding | None:
        """The first finding with ``code``, if any."""
        return next((f for f in self.findings if f.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return record(self) | {"findings": [finding.to_dict() for finding in self.findings]}


@dataclass(frozen=True, slots=True)
class DoctorReport:
    """What ``doctor`` found across the sandbox (or one agent); ``ok`` when nothing needs
    fixing. ``checked`` counts what was looked at, so "nothing found" can be told apart
    from "nothing checked"."""

    findings: list[Finding]
    ok: bool
    checked: dict[str, int] = field(default_factory=dict)

    def codes(self) -> list[str]:
        """The findings' codes, in order."""
        return [finding.code for finding in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return record(self) | {"findings": [finding.to_dict() for finding in self.findings]}


def by_severity(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; otherwise in the order found (stable)."""
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])
