"""Tool-source kinds, keyed by name.

A kind is a factory ``(DataSource, ToolContext) -> ToolSource``.

Adding a kind is adding a module and one line here (or an entry point in the
``cairn.tool_sources`` group for a plugin).
"""

from __future__ import annotations

from collections.abc import Callable

from cairn.domain.sources import DataSource
from cairn.errors import UnknownSourceKind
from cairn.registry import Registry
from cairn.tools.base import ToolContext, ToolSource

SourceFactory = Callable[[DataSource, ToolContext], ToolSource]

source_kinds: Registry[SourceFactory] = Registry(
    "tool source kind",
    "cairn.tool_sources",
    UnknownSourceKind,
    {
        "builtin": "cairn.tools.builtin:BuiltinSource",
        "user_mcp": "cairn.tools.mcp:McpSource",
        "integration": "cairn.tools.integration:IntegrationSource",
        "cairn": "cairn.tools.cairn_ops:CairnOpsSource",
    },
)
