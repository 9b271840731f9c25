"""The lock files pin what ``pyproject.toml`` asks for.

``make run`` and ``make test`` install only from ``requirements/*.txt``; a dependency added
to ``pyproject.toml`` without ``make lock`` would be missing on a fresh machine, and a range
raised past the pinned version would be ignored. Both are caught here, without resolving
anything (no network).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = canonicalize_name(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"])


def _pins(lock: Path) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in lock.read_text().splitlines():
        if not line or line[0].isspace() or line.startswith("#") or "==" not in line:
            continue
        requirement = line.split(";")[0].rstrip(" \\")
        name, _, version = requirement.partition("==")
        pins[canonicalize_name(name.split("[")[0])] = Version(version.strip())
    return pins


def _requirements(extras: list[str]) -> list[Requirement]:
    """The project's requirements with the named extras, self-references expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional: dict[str, list[str]] = project["optional-dependencies"]
    wanted, seen, found = list(extras), set(), [Requirement(r) for r in project["dependencies"]]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in optional[extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == PROJECT:
                wanted.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


@pytest.mark.parametrize(
    ("lock_name", "extras"), [("dev.txt", ["dev"]), ("bench.txt", ["dev", "bench"])]
)
def test_every_requirement_of_the_project_is_pinned_within_its_range(
    lock_name: str, extras: list[str]
) -> None:
    pins = _pins(ROOT / "requirements" / lock_name)
    problems = []
    for requirement in _requirements(extras):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement} is not in requirements/{lock_name}")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement} but requirements/{lock_name} pins {pinned}")
    assert problems == [], "pyproject.toml and the lock disagree (run `make lock`): " + "; ".join(
        problems
    )


def test_the_lock_pins_every_package_with_a_hash() -> None:
    text = (ROOT / "requirements" / "dev.txt").read_text()
    entries = [line for line in text.splitlines() if "==" in line and not line[0].isspace()]
    assert len(entries) > 50
    assert text.count("--hash=sha256:") >= len(entries)
