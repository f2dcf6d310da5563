"""IngestSlots: the ingest bound's places, queue and wait deadline, first come first served."""

from __future__ import annotations

import asyncio

from faultlens.api.concurrency import IngestSlots


def test_places_then_queue_then_refusal() -> None:
    async def scenario() -> tuple[list[bool], int, int]:
        slots = IngestSlots(limit=2, queue=1, wait_s=30)
        taken = [await slots.acquire(), await slots.acquire()]
        waiting = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0)
        refused = await slots.acquire()  # both places and the one queue place are taken: refused at once
        queued = len(slots.waiters)
        slots.release()  # handed to the waiter, the count of holders unchanged
        granted = await waiting
        return [*taken, refused, granted], queued, slots.in_flight

    outcomes, queued, in_flight = asyncio.run(scenario())
    assert outcomes == [True, True, False, True]
    assert queued == 1
    assert in_flight == 2


def test_a_wait_past_its_deadline_gives_up_and_leaves_the_queue() -> None:
    async def scenario() -> tuple[bool, int, int, bool]:
        slots = IngestSlots(limit=1, queue=4, wait_s=0.05)
        assert await slots.acquire()
        gave_up = await slots.acquire()
        left = len(slots.waiters)
        slots.release()
        return gave_up, left, slots.in_flight, await slots.acquire()

    gave_up, left, in_flight, again = asyncio.run(scenario())
    assert gave_up is False and left == 0
    assert in_flight == 0 and again is True


def test_waiters_are_served_in_arrival_order() -> None:
    async def scenario() -> list[int]:
        slots = IngestSlots(limit=1, queue=3, wait_s=30)
        order: list[int] = []
        assert await slots.acquire()

        async def batch(n: int) -> None:
            assert await slots.acquire()
            order.append(n)
            slots.release()

        tasks = []
        for n in range(3):
            tasks.append(asyncio.create_task(batch(n)))
            await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*tasks)
        assert slots.in_flight == 0 and not slots.waiters
        return order

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_a_cancelled_waiter_hands_its_place_on() -> None:
    async def scenario() -> tuple[bool, int]:
        slots = IngestSlots(limit=1, queue=2, wait_s=30)
        assert await slots.acquire()
        gone = asyncio.create_task(slots.acquire())
        kept = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        slots.release()
        granted = await kept
        slots.release()
        return granted, slots.in_flight

    granted, in_flight = asyncio.run(scenario())
    assert granted is True and in_flight == 0
