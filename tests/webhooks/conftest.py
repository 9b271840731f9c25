"""Provider deliveries go to a real ``cairn serve`` app on loopback (the triggers' server)."""

from tests.triggers.conftest import server

__all__ = ["server"]
