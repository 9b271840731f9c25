"""The tool-resolution trace: why an agent saw the tools it saw.

Skip reasons are a closed vocabulary so that tools (``explain``, ``doctor``, dashboards)
can branch on them; the ``message`` beside each is for people.

==================  ==================================================================
reason              meaning
==================  ==================================================================
``oauth_missing``   an integration has no OAuth connection
``oauth_expired``   the connection's token expired or was revoked upstream
``unreachable``     the server could not be reached or started (refused, DNS, exec)
``auth_refused``    the server answered 401/403: missing or wrong credentials
``timeout``         the source did not list its tools within the resolution timeout
``disabled``        the source was revoked or is switched off
``not_found``       the agent names a source id or kind that does not exist
``error``           anything else the source raised while listing tools
==================  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from cairn.text import record

SkipReason = Literal[
    "oauth_missing",
    "oauth_expired",
    "unreachable",
    "auth_refused",
    "timeout",
    "disabled",
    "not_found",
    "error",
]
SKIP_REASONS: tuple[SkipReason, ...] = get_args(SkipReason)


MAX_ADVERTISED = 500
"""Most names of a list that matters (advertised tools, missing entries) a stored trace keeps."""
SAMPLE = 50
"""Most names of a long tail (filtered out, hidden by a source, conflicts) a trace keeps."""


@dataclass(frozen=True, slots=True)
class SourceResolved:
    """A source that built, and how many tools it gave (before the agent's allowlist)."""

    source_id: str
    kind: str
    label: str
    tool_count: int
    duration_ms: float
    hidden_by_source: list[str] = field(default_factory=list)
    cold_start_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form. ``hidden_by_source``: tools the source's own allowed-tools list removed.
        ``cold_start_ms``: what connecting cost this resolution (starting a server, the
        handshake); ``None`` when it used a warm session or connects to nothing."""
        return record(self) | {
            "duration_ms": round(self.duration_ms, 3),
            "cold_start_ms": None if self.cold_start_ms is None else round(self.cold_start_ms, 3),
        }


@dataclass(frozen=True, slots=True)
class SourceSkipped:
    """A source whose builder soft-failed; the run went on without it."""

    source_id: str
    kind: str
    label: str
    reason: SkipReason
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return record(self)


@dataclass(frozen=True, slots=True)
class MissingEntry:
    """An allowlist entry that matched no real tool, with the closest real names."""

    entry: str
    suggestions: list[str]
    possibly_from_skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form. ``possibly_from_skipped`` names a skipped source whose namespace the
        entry carries: the tool may be real, its source just did not build this time."""
        return record(self)


@dataclass(slots=True)
class ToolResolutionTrace:
    """The drift detector of SPEC §1, filled in by ``cairn.tools.resolution``."""

    sources_resolved: list[SourceResolved] = field(default_factory=list)
    sources_skipped: list[SourceSkipped] = field(default_factory=list)
    tool_names_advertised: list[str] = field(default_factory=list)
    allowlist_filtered_out: list[str] = field(default_factory=list)
    allowlist_missing_entries: list[MissingEntry] = field(default_factory=list)
    duration_ms: float = 0.0
    name_conflicts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form stored on the run row, bounded whatever the catalog's size: the names
        that matter (advertised, missing, skipped) up to ``MAX_ADVERTISED``, a sample of
        ``SAMPLE`` for the long tails (filtered out, hidden by a source, name conflicts),
        with the full counts beside them and ``capped`` saying whether anything was cut."""
        capped = False

        def bounded(names: list[str], limit: int) -> list[str]:
            nonlocal capped
            if len(names) > limit:
                capped = True
                return names[:limit]
            return names

        resolved = []
        for source in self.sources_resolved:
            shown = source.to_dict()
            shown["hidden_by_source"] = bounded(source.hidden_by_source, SAMPLE)
            shown["hidden_by_source_count"] = len(source.hidden_by_source)
            resolved.append(shown)
        return {
            "sources_resolved": resolved,
            "sources_skipped": [s.to_dict() for s in self.sources_skipped],
            "tool_names_advertised": bounded(self.tool_names_advertised, MAX_ADVERTISED),
            "tool_names_advertised_count": len(self.tool_names_advertised),
            "allowlist_filtered_out": bounded(self.allowlist_filtered_out, SAMPLE),
            "allowlist_filtered_out_count": len(self.allowlist_filtered_out),
            "allowlist_missing_entries": [
                m.to_dict() for m in self.allowlist_missing_entries[:MAX_ADVERTISED]
            ],
            "duration_ms": round(self.duration_ms, 3),
            "name_conflicts": bounded(self.name_conflicts, SAMPLE),
            "name_conflicts_count": len(self.name_conflicts),
            "capped": capped or len(self.allowlist_missing_entries) > MAX_ADVERTISED,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolResolutionTrace:
        """Inverse of ``to_dict``."""
        return cls(
            sources_resolved=[
                SourceResolved(**{k: v for k, v in s.items() if k != "hidden_by_source_count"})
                for s in data.get("sources_resolved", [])
            ],
            sources_skipped=[SourceSkipped(**s) for s in data.get("sources_skipped", [])],
            tool_names_advertised=list(data.get("tool_names_advertised", [])),
            allowlist_filtered_out=list(data.get("allowlist_filtered_out", [])),
            allowlist_missing_entries=[
                MissingEntry(**m) for m in data.get("allowlist_missing_entries", [])
            ],
            duration_ms=float(data.get("duration_ms", 0.0)),
            name_conflicts=list(data.get("name_conflicts", [])),
        )
