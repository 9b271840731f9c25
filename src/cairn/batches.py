"""Writes handed over during one turn of the event loop, done together at the next.

Under load many requests or runs reach the point of writing the ledger while the event
loop is busy with others. Written one by one, each pays its own transaction and commit
and its own round of statements; handed to a ``LoopBatch`` they are written together,
one transaction for the lot, as soon as the loop comes round. Nobody waits longer than
that turn of the loop, so an idle server answers as fast as before.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class LoopBatch(Generic[Item, Outcome]):
    """Calls ``write`` with the items submitted since the loop's last turn, and gives each
    submitter its own outcome. ``write`` takes a list and returns one outcome per item, in
    order, all in one transaction. When it raises for a batch of several, each item is
    written again alone, so one bad item fails alone and the others are not held back.
    An item whose submitter was cancelled before the write is left out (nobody waits for
    it). Each thread's event loop batches on its own: an item is written, and answered,
    on the loop that submitted it."""

    def __init__(
        self, write: Callable[[list[Item]], Sequence[Outcome]], max_batch: int = 256
    ) -> None:
        self._write = write
        self.max_batch = max_batch
        self._loops = threading.local()  # each thread's event loop batches on its own

    async def submit(self, item: Item) -> Outcome:
        """``item``'s outcome once its batch is written (or the error of its write)."""
        loop = asyncio.get_running_loop()
        pending: list[tuple[Item, asyncio.Future[Outcome]]] | None = getattr(
            self._loops, "pending", None
        )
        if pending is None or getattr(self._loops, "loop", None) is not loop:
            pending = self._loops.pending = []  # nothing waits on an earlier loop's items
            self._loops.loop = loop
        done: asyncio.Future[Outcome] = loop.create_future()
        pending.append((item, done))
        if len(pending) == 1:
            loop.call_soon(self._flush, pending)
        return await done

    def _flush(self, pending: list[tuple[Item, asyncio.Future[Outcome]]]) -> None:
        self._loops.pending = None
        batch = [entry for entry in pending if not entry[1].cancelled()]
        for start in range(0, len(batch), self.max_batch):
            chunk = batch[start : start + self.max_batch]
            try:
                self._commit(chunk)
            except BaseException as exc:  # never leave a submitter waiting
                for _item, done in chunk:
                    if not done.done():
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    def _commit(self, chunk: list[tuple[Item, asyncio.Future[Outcome]]]) -> None:
        try:
            outcomes = self._write([item for item, _done in chunk])
        except Exception as exc:
            if len(chunk) > 1:
                for entry in chunk:
                    self._commit([entry])
            elif not chunk[0][1].done():
                chunk[0][1].set_exception(exc)
            return
        for (_item, done), outcome in zip(chunk, outcomes, strict=True):
            if not done.done():
                done.set_result(outcome)
