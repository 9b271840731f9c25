"""The rules ``explain`` and ``doctor`` share: text helpers, the context a run diagnosis
may look up, skipped sources, stale allowlist entries, "does the task seem to need this
tool?", and the reason of a model error.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from cairn.domain.agents import Agent
from cairn.domain.diagnosis import Finding
from cairn.domain.runs import Run, RunEvent
from cairn.domain.sources import DataSource
from cairn.domain.trace import MissingEntry, SourceSkipped
from cairn.text import capitalised, names

# --- small text helpers ----------------------------------------------------------------


def quote_json(value: Any) -> str:
    """A JSON value as one shell word, for commands people paste."""
    return shlex.quote(json.dumps(value))


def seconds(value: float) -> str:
    """A duration for people: ``2.5 s``, ``0.004 s``."""
    return f"{value:.1f} s" if value >= 0.1 or value == 0 else f"{value:.3f} s"


# --- the run context ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a run diagnosis may look up beside the row: the agent as it is now, the
    sandbox's sources (for URLs, app slugs and namespaces) and the resolution timeout."""

    agent: Agent | None = None
    sources: list[DataSource] = field(default_factory=list)
    resolve_timeout_s: float = 10.0

    def source(self, source_id: str) -> DataSource | None:
        """A source by id or label."""
        return next((s for s in self.sources if source_id in (s.source_id, s.label)), None)

    def namespaces(self) -> list[str]:
        """Tool-name prefixes of the sandbox's sources, longest first."""
        found = {str(s.config.get("namespace")) for s in self.sources if s.config.get("namespace")}
        return sorted(found, key=len, reverse=True)

    def source_of_tool(self, tool_name: str) -> DataSource | None:
        """The source whose namespace prefixes ``tool_name`` (builtin tools have none)."""
        for source in sorted(
            self.sources, key=lambda s: len(str(s.config.get("namespace") or "")), reverse=True
        ):
            namespace = source.config.get("namespace")
            if namespace and tool_name.startswith(f"{namespace}_"):
                return source
        return None


# --- shared rules (also used by doctor) ------------------------------------------------------


def skip_finding(
    skip: SourceSkipped,
    context: RunContext,
    slug: str,
    *,
    suffix: str = "",
    entries: list[MissingEntry] | None = None,
) -> Finding:
    """A skipped source: which, why (the reason code and its message) and the fix.
    ``entries`` are allowlist entries that match nothing because this source was skipped
    (``possibly_from_skipped``): named, so they are not mistaken for a stale allowlist."""
    record = context.source(skip.source_id)
    label = skip.label
    evidence: dict[str, Any] = {"sources_skipped": [skip.to_dict()], "reason": skip.reason}
    config = record.config if record else {}
    url = config.get("url")
    app_slug = str(config.get("app_slug") or label)
    test = f"`cairn source test {label}`"
    where = _where_source(record, label)
    if skip.reason == "oauth_missing":
        # Whether it was revoked is in the source's own message, quoted below.
        cause = (
            f"{app_slug} has no OAuth connection"
            f", so the integration source {label!r} was skipped and none of its tools "
            f"were offered ({skip.message})."
        )
        fix = f"Connect it: `cairn connection add {app_slug}` (with the app's token){suffix}."
    elif skip.reason == "oauth_expired":
        cause = (
            f"The OAuth token for {app_slug} expired or was refused by the app, so the "
            f"integration source {label!r} was skipped ({skip.message})."
        )
        fix = f"Reconnect it with a fresh token: `cairn connection add {app_slug}`{suffix}."
    elif skip.reason == "unreachable":
        cause = f"MCP server {where} is down or cannot start, so it was skipped ({skip.message})."
        fix = f"Start it, then {test}{suffix}."
    elif skip.reason == "auth_refused":
        add = (
            f"`cairn source add {label} --url {url} --auth {config.get('auth', 'bearer')} "
            "--token …`"
            if url
            else f"`cairn source add {label} …`"
        )
        cause = (
            f"MCP server {where} refused the credentials Cairn sent, so it was skipped "
            f"({skip.message})."
        )
        fix = (
            "Use the token the server expects: register it again with the right one "
            f"(`cairn source revoke {label} --yes`, then {add}) and run {test}{suffix}."
        )
    elif skip.reason == "timeout":
        cause = (
            f"MCP server {where} did not list its tools within the resolution timeout "
            f"({context.resolve_timeout_s:g} s), so it was skipped ({skip.message})."
        )
        fix = (
            f"Check it answers: {test}; if it is just slow to start, raise "
            f"CAIRN_RESOLVE_TIMEOUT_S (now {context.resolve_timeout_s:g}){suffix}."
        )
        evidence["resolve_timeout_s"] = context.resolve_timeout_s
    elif skip.reason == "disabled":
        cause = (
            f"Source {label!r} was revoked, but the agent still names it in tool_sources, so "
            "it was skipped."
        )
        fix = (
            f"Register it again (`cairn source add {label} …`), or drop it from the agent: "
            f"{_tool_sources_command(context, slug, drop=skip)}{suffix}."
        )
    elif skip.reason == "not_found":
        known = sorted({s.label for s in context.sources} | {s.kind for s in context.sources})
        close = difflib.get_close_matches(skip.source_id, [*known, "builtin"], n=3, cutoff=0.5)
        cause = (
            f"The agent's tool_sources names {skip.source_id!r}, which is no source id, label "
            "or kind in this sandbox, so it was skipped."
        )
        fix = (
            (f"Did you mean {names([repr(c) for c in close])}? " if close else "")
            + "`cairn source list` shows the real ones; fix the agent: "
            + f"{_tool_sources_command(context, slug, drop=skip, replace=close[:1])}{suffix}."
        )
        evidence["suggestions"] = close
    else:
        cause = (
            f"Source {label!r} failed while listing its tools, so it was skipped ({skip.message})."
        )
        fix = f"{test} shows the error; fix the server or its configuration{suffix}."
    if skip.reason in ("oauth_missing", "oauth_expired"):
        evidence["app_slug"] = app_slug
    elif url and skip.reason in ("unreachable", "auth_refused"):
        evidence["url"] = url
    if entries:
        cause += (
            f" The allowlist's {names([repr(m.entry) for m in entries])} probably come"
            + ("s" if len(entries) == 1 else "")
            + " from it, so "
            + ("it matched" if len(entries) == 1 else "they matched")
            + " nothing."
        )
        evidence["allowlist_missing_entries"] = [m.to_dict() for m in entries]
    return Finding("source_skipped", "error", cause, fix, evidence)


def _where_source(record: DataSource | None, label: str) -> str:
    if record is None:
        return repr(label)
    config = record.config
    if config.get("url"):
        return f"{label!r} at {config['url']}"
    if config.get("command"):
        return f"{label!r} (command {config['command']!r})"
    return repr(label)


def _tool_sources_command(
    context: RunContext, slug: str, *, drop: SourceSkipped, replace: list[str] | None = None
) -> str:
    current = context.agent.tool_sources if context.agent else None
    if current is None:
        return f"`cairn agent update {slug} --tool-sources '[…]'`"
    kept = [s for s in current if s not in (drop.source_id, drop.label)]
    kept += [r for r in (replace or []) if r not in kept]
    return f"`cairn agent update {slug} --tool-sources {quote_json(kept)}`"


def stale_allowlist_finding(
    slug: str,
    stale: list[MissingEntry],
    allowlist: list[str],
    *,
    advertised: list[str],
) -> Finding:
    """Allowlist entries that match no real tool, with the closest real names and the
    command that swaps them in."""
    every = bool(allowlist) and len(stale) >= len(allowlist)
    swaps = [m for m in stale if m.suggestions]
    lost = [m for m in stale if not m.suggestions]
    replacement: list[str] = []
    swap = {m.entry: m.suggestions[0] for m in swaps}
    for entry in allowlist or [m.entry for m in stale]:
        if entry in {m.entry for m in lost}:
            continue
        chosen = swap.get(entry, entry)
        if chosen not in replacement:
            replacement.append(chosen)
    listed = names([repr(m.entry) for m in stale])
    verb = "matches" if len(stale) == 1 else "match"
    if every:
        cause = (
            f"Every allowlist entry is stale: {listed} {verb} no real tool, so the model was "
            "offered no tools from them."
        )
    else:
        count = "1 allowlist entry" if len(stale) == 1 else f"{len(stale)} allowlist entries"
        cause = f"{count} {verb} no real tool: {listed}."
    parts: list[str] = []
    if swaps:
        parts.append(
            "use the real names ("
            + "; ".join(
                f"{m.entry!r} → {names([repr(s) for s in m.suggestions], 3)}" for m in swaps
            )
            + ")"
        )
    if lost:
        parts.append(
            f"drop {names([repr(m.entry) for m in lost])}: no real tool looks like "
            + ("it" if len(lost) == 1 else "them")
            + f" (`cairn agent tools {slug}` lists what there is)"
        )
    command = (
        f"`cairn agent update {slug} --tool-allowlist {quote_json(replacement)}`"
        if replacement
        else f"`cairn agent update {slug} --tool-allowlist '[]'` (every tool), or name real ones"
    )
    joined = "; ".join(parts)
    fix = f"{capitalised(joined)}: {command}."
    if allowlist and not any(m.entry in allowlist for m in stale):
        fix = (
            f"The agent's allowlist has changed since (now {quote_json(allowlist)}): "
            f"`cairn agent tools {slug}` shows whether it matches real tools today."
        )
    return Finding(
        "stale_allowlist",
        "error" if every or not advertised else "warning",
        cause,
        fix,
        {
            "allowlist_missing_entries": [m.to_dict() for m in stale],
            "tool_allowlist": allowlist,
            "tool_names_advertised": advertised,
        },
    )


# --- words: does the task seem to need a tool? ----------------------------------------------

_GENERIC_WORDS = frozenset(
    (
        *("get", "set", "list", "create", "update", "delete", "run", "tool", "tools", "make"),
        *("the", "and", "for", "with", "from", "into", "new", "all", "one", "api", "mcp"),
        *("now", "data", "info", "item", "items", "value", "do", "call", "use"),
    )
)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _tool_words(name: str, namespaces: list[str]) -> list[str]:
    bare = name
    for namespace in namespaces:
        if bare.startswith(f"{namespace}_"):
            bare = bare[len(namespace) + 1 :]
            break
    bare = bare.removeprefix("pd_")
    return [
        w for w in re.split(r"[_\-.]+", bare.lower()) if len(w) >= 3 and w not in _GENERIC_WORDS
    ]


def _known(word: str, vocabulary: set[str]) -> bool:
    return (
        word in vocabulary
        or f"{word}s" in vocabulary
        or f"{word}es" in vocabulary
        or (word.endswith("s") and word[:-1] in vocabulary)
    )


def seemingly_needed(
    candidates: list[str], prompt: str, payload: Any, namespaces: list[str]
) -> dict[str, tuple[str, list[str]]]:
    """Filtered-out tools the system prompt or the payload seems to ask for: the tool's own
    name appears, or every meaningful word of it does (its namespace prefix aside; plurals
    and run-together words like 'look up' → 'lookup' count). Maps name → (where, words)."""
    texts = {
        "system prompt": prompt,
        "event payload": json.dumps(payload, default=str) if payload is not None else "",
    }
    vocabularies: dict[str, set[str]] = {}
    for where, text in texts.items():
        tokens = _tokens(text)
        vocabularies[where] = set(tokens) | {a + b for a, b in itertools.pairwise(tokens)}
    found: dict[str, tuple[str, list[str]]] = {}
    for name in candidates:
        words = _tool_words(name, namespaces)
        for where, text in texts.items():
            if name.lower() in text.lower():
                found[name] = (where, [name])
                break
            if words and all(_known(w, vocabularies[where]) for w in words):
                found[name] = (where, words)
                break
    return found


# --- model error reasons -------------------------------------------------------------------


def model_error_reason(run: Run, events: list[RunEvent]) -> tuple[str, str]:
    """The model error's reason (``cairn.errors.ModelErrorReason``) and where it was read:
    the error event's ``reason`` (the runner records it from the backend's classification),
    else the last ``retry`` event's. Never the message's wording: that is for people."""
    error = next((e for e in reversed(events) if e.kind == "error"), None)
    if error is not None and error.data.get("reason"):
        return str(error.data["reason"]), "error_event.reason"
    retries = [e for e in events if e.kind == "retry" and e.data.get("reason")]
    if retries:
        return str(retries[-1].data["reason"]), "retry_event.reason"
    return "other", "error_event.reason"
