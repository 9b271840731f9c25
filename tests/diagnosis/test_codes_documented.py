"""Every finding code the diagnosis can produce is documented in docs/diagnosis.md, and
every documented code exists, so scripts that branch on codes can trust the page."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def produced() -> set[str]:
    codes: set[str] = set()
    for path in (ROOT / "src" / "cairn" / "services" / "diagnosis").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(r'Finding\(\s*"([a-z_]+)"', text))
        codes |= set(re.findall(r'"(model_[a-z_]+)",?\n', text))  # PROVIDER_SIDE's values
    return codes


def documented() -> set[str]:
    text = (ROOT / "docs" / "diagnosis.md").read_text(encoding="utf-8")
    codes: set[str] = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            codes |= set(re.findall(r"`([a-z_]+)`", first))
    return codes


def test_every_finding_code_is_documented_and_every_documented_code_exists() -> None:
    assert produced() == documented()
    assert {"stale_allowlist", "source_skipped", "filtered_out", "runaway_usage"} <= produced()
