"""The live SQL layers skip a tail model's run when no parent row can fall in its window:
RowTimes must never say a range is empty when an inserted span reaches into it."""

from __future__ import annotations

import random

from live.day_tables import RowTimes


def _brute_force(spans: list[tuple[int, int]], lower: int, upper: int) -> bool:
    return any(low < upper and high >= lower for low, high in spans)


def test_row_times_match_the_spans_they_were_given() -> None:
    rng = random.Random(7)
    for _ in range(200):
        times, spans = RowTimes(), []
        for _ in range(rng.randint(0, 30)):
            low = rng.randint(0, 100)
            span = (low, low + rng.choice([0, 0, 1, 3, 10]))
            times.add(*span)
            spans.append(span)
            # disjoint and sorted after every insert
            assert all(e < s for e, s in zip(times.ends, times.starts[1:], strict=False))
            assert all(s <= e for s, e in zip(times.starts, times.ends, strict=True))
        for lower in range(-2, 115, 3):
            for width in (1, 2, 5, 20):
                expected = _brute_force(spans, lower, lower + width)
                assert times.overlaps(lower, lower + width) == expected, (spans, lower, width)


def test_one_second_rows_leave_the_seconds_between_them_empty() -> None:
    second = 1_000_000_000
    times = RowTimes()
    for start in (10, 11, 14):
        times.add(start * second, start * second)
    assert times.overlaps(11 * second, 12 * second)
    assert not times.overlaps(12 * second, 14 * second)
    assert times.overlaps(12 * second, 14 * second + 1)
    assert times.starts == [10 * second, 11 * second, 14 * second]
