"""Estimated run cost from a price table, in integer micro-units of currency.

Prices are per million tokens, so ``tokens * price`` is already in micro-units: no float
rounding accumulates across a ledger. Uncached prompt tokens are charged at ``input``,
cache reads at ``cache_read`` and cache writes at ``cache_write`` (both default to
``input``), completion tokens at ``output``. A model with no price gets ``None`` (unknown),
never 0, so a cost report cannot hide an unpriced model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cairn.domain.runs import Usage
from cairn.errors import UsageError


@dataclass(frozen=True, slots=True)
class Price:
    """Per-million-token prices for one model (or a family of models)."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


class PriceTable:
    """Exact keys win, then the longest ``prefix*`` key that matches ``backend:model``."""

    def __init__(self, entries: dict[str, Price]) -> None:
        self.entries = entries
        self._resolved: dict[str, Price | None] = {}

    def price_for(self, model: str) -> Price | None:
        """The price of ``backend:model``, or ``None`` when the table has none."""
        if model not in self._resolved:
            self._resolved[model] = self._lookup(model)
        return self._resolved[model]

    def _lookup(self, model: str) -> Price | None:
        if model in self.entries:
            return self.entries[model]
        best: tuple[int, Price] | None = None
        for key, price in self.entries.items():
            matches = key.endswith("*") and model.startswith(key[:-1])
            if matches and (best is None or len(key) > best[0]):
                best = (len(key), price)
        return best[1] if best else None

    def cost_micros(self, model: str, usage: Usage) -> int | None:
        """Estimated cost of ``usage`` on ``model`` in micro-units, or ``None`` if unpriced."""
        price = self.price_for(model)
        if price is None:
            return None
        cache_read = usage.cache_read_tokens
        cache_write = usage.cache_write_tokens
        uncached = max(usage.tokens_in - cache_read - cache_write, 0)
        total = (
            uncached * price.input
            + cache_read * (price.cache_read if price.cache_read is not None else price.input)
            + cache_write * (price.cache_write if price.cache_write is not None else price.input)
            + usage.tokens_out * price.output
        )
        return round(total)


def _parse(data: Any, origin: str) -> dict[str, Price]:
    if not isinstance(data, dict):
        raise UsageError(f"price table {origin} must be a JSON object of model → prices")
    entries = {}
    for key, value in data.items():
        if key.startswith("_"):
            continue
        try:
            entries[key] = Price(**value)
        except TypeError:
            raise UsageError(
                f"price table {origin}: entry {key!r} needs 'input' and 'output' "
                "(and optionally 'cache_read', 'cache_write'), per million tokens"
            ) from None
    return entries


def load_price_table(home: Path) -> PriceTable:
    """Shipped defaults, overlaid with ``CAIRN_PRICES_FILE`` or ``$CAIRN_HOME/prices.json``."""
    shipped = resources.files("cairn").joinpath("data/prices.json").read_text(encoding="utf-8")
    entries = _parse(json.loads(shipped), "(shipped)")
    override = Path(os.environ.get("CAIRN_PRICES_FILE") or home / "prices.json")
    if override.exists():
        try:
            data = json.loads(override.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UsageError(f"price table {override} is not valid JSON: {exc.msg}") from None
        entries.update(_parse(data, str(override)))
    return PriceTable(entries)
