"""What a model is told about a tool: shared by the tool sources that offer tools and the
model backends that describe them to a vendor, neither of which should import the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What a model is told about a tool: a name, what it does, a JSON Schema for arguments."""

    name: str
    description: str
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
