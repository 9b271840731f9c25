"""The CLI fixture of ``tests/cli`` (the real entry point, in-process) for these tests."""

from tests.cli.conftest import Cli, Result, cli

__all__ = ["Cli", "Result", "cli"]
