"""A registry keyed by name, shared by every pluggable seam (model backends, tool sources).

Built-ins are named by import path and imported on first use, so a CLI command that never
fires a run never pays for a vendor SDK or the MCP client. Third-party plugins register
through the entry-point group given to the registry, the same call a built-in goes through.
"""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

from cairn.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → factory. ``get`` of an unknown name raises ``error_class`` listing the known names."""

    def __init__(
        self,
        what: str,
        entry_point_group: str,
        error_class: type[UsageError],
        builtins: dict[str, str],
    ) -> None:
        self._what = what
        self._group = entry_point_group
        self._error_class = error_class
        self._paths: dict[str, str] = dict(builtins)
        self._loaded: dict[str, T] = {}
        self._entry_points_scanned = False

    def register(self, name: str, factory: T) -> None:
        """Add (or replace) ``name``. Plugins call this from their entry point."""
        self._loaded[name] = factory
        self._paths.pop(name, None)

    def provide(self, name: str, path: str) -> None:
        """Add a built-in by import path (``module:attribute``), imported on first use: how a
        higher layer adds one without the registry's own layer naming it."""
        if name not in self._loaded:
            self._paths[name] = path

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a plugin being unloaded, or a test cleaning up)."""
        self._loaded.pop(name, None)
        self._paths.pop(name, None)

    def names(self) -> list[str]:
        """Every known name, built-in or plugged in, sorted."""
        self._scan_entry_points()
        return sorted(set(self._paths) | set(self._loaded))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def get(self, name: str) -> T:
        """The factory for ``name``; imports a built-in on first use."""
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._paths:
            self._scan_entry_points()
        path = self._paths.get(name)
        if path is None:
            if name in self._loaded:
                return self._loaded[name]
            raise self._error_class(
                f"unknown {self._what} {name!r}; known: {', '.join(self.names())}"
            )
        module_name, _, attribute = path.partition(":")
        factory: T = getattr(importlib.import_module(module_name), attribute)
        self._loaded[name] = factory
        del self._paths[name]
        return factory

    def _scan_entry_points(self) -> None:
        if self._entry_points_scanned:
            return
        self._entry_points_scanned = True
        from importlib.metadata import entry_points

        for entry_point in entry_points(group=self._group):
            if entry_point.name not in self._loaded:
                self._paths.setdefault(entry_point.name, entry_point.value)
