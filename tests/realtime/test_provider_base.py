"""``iterate_in_thread``: a blocking generator read on the loop, stoppable, bounded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from realtime.providers.base import iterate_in_thread


def counting(produced: list[int], stop_seen: threading.Event, limit: int = 1000):  # type: ignore[no-untyped-def]
    def factory(stop: threading.Event) -> Iterator[int]:
        for n in range(limit):
            if stop.is_set():
                stop_seen.set()
                return
            produced.append(n)
            yield n
            time.sleep(0.001)

    return factory


async def test_items_arrive_in_order_and_end() -> None:
    produced: list[int] = []
    items = [item async for item in iterate_in_thread(counting(produced, threading.Event(), 20))]
    assert items == list(range(20))


async def test_max_ahead_pauses_the_thread_while_nobody_reads() -> None:
    produced: list[int] = []
    stream = iterate_in_thread(counting(produced, threading.Event()), max_ahead=3)
    assert await anext(stream) == 0
    await asyncio.sleep(0.2)  # a reader busy elsewhere: the producer must wait
    assert len(produced) <= 5
    assert await anext(stream) == 1
    await stream.aclose()


async def test_closing_the_iterator_stops_the_thread() -> None:
    produced: list[int] = []
    stop_seen = threading.Event()
    stream = iterate_in_thread(counting(produced, stop_seen), max_ahead=2)
    await anext(stream)
    await stream.aclose()
    await asyncio.sleep(0.1)  # the thread notices the stop flag within its next step
    count = len(produced)
    await asyncio.sleep(0.2)
    assert len(produced) == count < 50


async def test_an_error_in_the_thread_reaches_the_reader() -> None:
    def failing(stop: threading.Event) -> Iterator[int]:
        yield 1
        raise ValueError("model broke")

    stream = iterate_in_thread(failing)
    assert await anext(stream) == 1
    with pytest.raises(ValueError, match="model broke"):
        await anext(stream)
