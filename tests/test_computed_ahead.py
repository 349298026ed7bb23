"""computed_ahead: the same items in order, errors raised where they are used, and a consumer
that stops early stops the producer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from foundation.computed_ahead import computed_ahead


def producer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "computed-ahead"]


def test_the_items_come_in_order_each_once() -> None:
    assert list(computed_ahead(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(computed_ahead(iter([]))) == []
    assert producer_threads() == []


def test_an_error_producing_an_item_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("record 7: bad price")

    ahead = computed_ahead(items())
    assert [next(ahead), next(ahead)] == [1, 2]
    with pytest.raises(ValueError, match="record 7: bad price"):
        next(ahead)
    assert producer_threads() == []


def test_a_consumer_that_stops_early_stops_the_producer() -> None:
    produced = []

    def endless() -> Iterator[int]:
        number = 0
        while True:
            produced.append(number)
            yield number
            number += 1

    ahead = computed_ahead(endless(), depth=2)
    assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    ahead.close()
    assert producer_threads() == []
    # at most the queue's two, and the one waiting to be put, beyond what was taken
    assert len(produced) <= 3 + 2 + 1
