"""Wire models for ``explain`` and ``doctor`` (the API, the SDK and ``--json``).

They mirror ``cairn.domain.diagnosis``: a finding's ``code`` is a stable id to branch on
(``docs/diagnosis.md``), ``evidence`` holds the ledger fields it rests on by their own names.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from cairn.domain.diagnosis import ExplanationKind, Severity


class Finding(BaseModel):
    """One diagnosed cause, its fix, and the fields that show it."""

    code: str = Field(description="Stable id, e.g. stale_allowlist, source_skipped, filtered_out")
    severity: Severity
    subject: str | None = Field(
        default=None, description="doctor: the agent, trigger or source it is about"
    )
    cause: str = Field(description="What happened, in plain English")
    fix: str = Field(description="What to do, with the exact command when there is one")
    evidence: dict[str, Any] = Field(
        default_factory=dict, description="The run, trace, event or trigger fields it rests on"
    )


class Explanation(BaseModel):
    """Why a run, an event or an agent did what it did; the root cause first."""

    kind: ExplanationKind
    subject: str = Field(description="The run_id, event_id or agent slug explained")
    summary: str = Field(description="One plain-English sentence")
    findings: list[Finding]


class DoctorReport(BaseModel):
    """What ``doctor`` found; ``ok`` is false when anything needs fixing."""

    ok: bool
    checked: dict[str, int] = Field(
        default_factory=dict, description="How many agents, triggers, sources, runs were checked"
    )
    findings: list[Finding]


class DoctorQuery(BaseModel):
    """The query parameters of a doctor scan."""

    agent: str | None = Field(None, description="Only this agent (slug)")
    quiet_days: float = Field(
        7, ge=0, le=3650, description="A trigger with no fire for this many days is quiet"
    )
