"""Cairn's domain types: plain dataclasses with no I/O, shared by every layer above."""
