"""Diagnosis reads facts from fields (``error_kind``, the error event's ``reason``,
``retries`` and ``limits``), never from the wording of a message: rewording an error must
not change a diagnosis. This test reads the diagnosis modules' code and fails on any
string test, regex or ``in`` check applied to an error or message text."""

from __future__ import annotations

import ast
from pathlib import Path

import cairn.services.diagnosis

PROSE = {"error", "error_message", "message"}
STRING_TESTS = {"startswith", "endswith", "find", "index", "count"}
REGEX_CALLS = {"search", "match", "fullmatch", "findall", "finditer", "sub", "split"}


def _modules() -> list[Path]:
    package = Path(cairn.services.diagnosis.__file__).parent
    found = sorted(package.glob("*.py"))
    assert len(found) >= 5, found
    return found


def _prose(node: ast.AST) -> bool:
    """Does this expression read an error or message text (``run.error_message``,
    ``call.error``, ``data["message"]``, ``data.get("message")``)?"""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Attribute) and inner.attr in PROSE:
            return True
        if (
            isinstance(inner, ast.Subscript)
            and isinstance(inner.slice, ast.Constant)
            and inner.slice.value in PROSE
        ):
            return True
        if (
            isinstance(inner, ast.Call)
            and isinstance(inner.func, ast.Attribute)
            and inner.func.attr == "get"
            and inner.args
            and isinstance(inner.args[0], ast.Constant)
            and inner.args[0].value in PROSE
        ):
            return True
    return False


def offences(source: str) -> list[str]:
    """Every place the code tests the wording of an error or a message."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            target = node.func.value
            if name in STRING_TESTS and _prose(target):
                found.append(f"line {node.lineno}: .{name}() on a message")
            if (
                name in REGEX_CALLS
                and isinstance(target, ast.Name)
                and target.id == "re"
                and any(_prose(arg) for arg in node.args)
            ):
                found.append(f"line {node.lineno}: re.{name}() on a message")
        if isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, ast.In | ast.NotIn) and _prose(right):
                    found.append(f"line {node.lineno}: `in` on a message")
    return found


def test_no_diagnosis_module_matches_on_english_error_text() -> None:
    for module in _modules():
        assert offences(module.read_text()) == [], module.name


def test_the_check_catches_what_diagnosis_used_to_do() -> None:
    old = """
if call.error and call.error.startswith("interrupted:"):
    pass
unadvertised = [c for c in calls if c.error and "was not advertised" in c.error]
limit = re.search(r"max_turns=(\\d+)", run.error_message or "")
retried = re.sub(r" \\(gave up after \\d+ retries\\)$", "", message)
"""
    assert len(offences(old)) == 3
