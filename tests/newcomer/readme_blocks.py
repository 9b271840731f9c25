"""The README's shell blocks, in order, as a script a test can run.

A block is a fenced ``sh``/``bash``/``shell`` block (run as written) or a ``console`` block
(its ``$ `` lines, with ``\\`` continuations, are the commands). An HTML comment right above
the fence, ``<!-- readme-test: skip <why> -->``, leaves a block out: for blocks that need a
real vendor key, a service of your own, or that run forever.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*$")
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\b(?P<why>.*?)-->")
SHELLS = ("sh", "bash", "shell", "console")


@dataclass(frozen=True)
class Block:
    """One shell block: where it starts, its commands, and why it is skipped (if it is)."""

    line: int
    lang: str
    code: str
    skip: str | None


def blocks(markdown: str) -> list[Block]:
    """Every shell block of ``markdown``, in order."""
    lines = markdown.splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening or not opening["lang"]:
            index += 1
            continue
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not FENCE.match(lines[index]):
            body.append(lines[index])
            index += 1
        index += 1
        if opening["lang"] not in SHELLS:
            continue
        code = textwrap.dedent("\n".join(body))
        if opening["lang"] == "console":
            code = _console_commands(code)
        found.append(Block(start + 1, opening["lang"], code, _skip_reason(lines, start)))
    return found


def _skip_reason(lines: list[str], fence: int) -> str | None:
    above = fence - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    marker = SKIP.search(lines[above]) if above >= 0 else None
    return (marker["why"].strip() or "marked skip") if marker else None


def _console_commands(transcript: str) -> str:
    commands: list[str] = []
    continuing = False
    for line in transcript.splitlines():
        if line.startswith("$ "):
            commands.append(line[2:])
            continuing = line.rstrip().endswith("\\")
        elif continuing:
            commands.append(line)
            continuing = line.rstrip().endswith("\\")
    return "\n".join(commands)


def script(found: list[Block], replacements: dict[str, str]) -> str:
    """One bash script running the blocks in order (a shared shell, as in one terminal),
    announcing each on stderr so a failure names its block; stops at the first failure."""
    parts = ["set -eo pipefail"]
    for block in found:
        if block.skip is not None:
            continue
        code = block.code
        for old, new in replacements.items():
            code = code.replace(old, new)
        parts.append(f"echo '::readme-block {block.line}' >&2")
        parts.append(code)
    parts.append("echo '::readme-done' >&2")
    return "\n".join(parts) + "\n"
