"""``LoopBatch``: what is submitted in one turn of the event loop is written together,
one bad item fails alone, and each thread's loop batches and answers its own items."""

from __future__ import annotations

import asyncio
import threading

from cairn.batches import LoopBatch


class Ledger:
    """A writer that records each call's batch and refuses odd numbers in a batch."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.threads: set[int] = set()

    def write(self, items: list[int]) -> list[str]:
        self.calls.append(list(items))
        self.threads.add(threading.get_ident())
        if any(item % 2 for item in items):
            raise ValueError(f"odd item in {items}")
        return [f"stored {item}" for item in items]


def test_items_of_one_turn_are_written_together_each_answered_with_its_own() -> None:
    ledger = Ledger()
    batch = LoopBatch(ledger.write)

    async def main() -> list[str]:
        return list(await asyncio.gather(*(batch.submit(n) for n in (2, 4, 6))))

    assert asyncio.run(main()) == ["stored 2", "stored 4", "stored 6"]
    assert ledger.calls == [[2, 4, 6]]


def test_a_bad_item_fails_alone_and_the_others_are_written() -> None:
    ledger = Ledger()
    batch = LoopBatch(ledger.write)

    async def main() -> list[object]:
        return await asyncio.gather(*(batch.submit(n) for n in (2, 3, 4)), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert outcomes[0] == "stored 2" and outcomes[2] == "stored 4"
    assert isinstance(outcomes[1], ValueError)
    assert ledger.calls == [[2, 3, 4], [2], [3], [4]], "the batch, then each item alone"


def test_a_new_loop_after_an_earlier_one_batches_again() -> None:
    ledger = Ledger()
    batch = LoopBatch(ledger.write)
    for n in (2, 4):
        assert asyncio.run(batch.submit(n)) == f"stored {n}"
    assert ledger.calls == [[2], [4]]


def test_each_threads_loop_writes_and_answers_its_own_items() -> None:
    """Thread B submits while thread A's batch waits for A's next turn: B's item is not
    written in A's batch (nor answered from A's thread), but in a batch of B's loop."""
    ledger = Ledger()
    batch = LoopBatch(ledger.write)
    b_submitted = threading.Event()
    a_written = threading.Event()
    answers: dict[str, object] = {}

    def thread_a() -> None:
        async def main() -> str:
            task = asyncio.create_task(batch.submit(2))
            await asyncio.sleep(0)  # submitted: its batch is written at the next turn
            b_submitted.wait(10)  # blocks this loop, so that turn waits for B's submit
            answer = await task
            a_written.set()
            return answer

        answers["a"] = asyncio.run(main())

    def thread_b() -> None:
        async def main() -> str:
            task = asyncio.create_task(batch.submit(4))
            await asyncio.sleep(0)
            b_submitted.set()
            a_written.wait(10)
            return await asyncio.wait_for(task, 5)

        try:
            answers["b"] = asyncio.run(main())
        except Exception as exc:
            answers["b"] = exc

    pool = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    pool[0].start()
    pool[1].start()
    for thread in pool:
        thread.join(30)
    assert answers == {"a": "stored 2", "b": "stored 4"}
    assert sorted(ledger.calls) == [[2], [4]], "each loop's item in a batch of its own"
    assert len(ledger.threads) == 2, "each written on its own loop's thread"
