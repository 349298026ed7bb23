"""An independent, straightforward MBO book replay for tests (dicts, one record at a time)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

F_LAST, F_SNAPSHOT = 128, 32


@dataclass
class ReplayBook:
    """Orders by id and aggregated depth by (side, price) of one instrument."""

    orders: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    depth: dict[str, dict[int, int]] = field(
        default_factory=lambda: {"B": defaultdict(int), "A": defaultdict(int)}
    )
    unknown_references: list[int] = field(default_factory=list)

    def best(self, side: str) -> int | None:
        prices = [price for price, size in self.depth[side].items() if size > 0]
        if not prices:
            return None
        return max(prices) if side == "B" else min(prices)

    def apply(
        self, index: int, action: str, side: str, price: int, size: int, order_id: int
    ) -> None:
        if action == "R":
            self.orders.clear()
            self.depth = {"B": defaultdict(int), "A": defaultdict(int)}
        elif action == "A":
            self.orders[order_id] = (side, price, size)
            self.depth[side][price] += size
        elif action == "C":
            if order_id not in self.orders:
                self.unknown_references.append(index)
                return
            old_side, old_price, old_size = self.orders.pop(order_id)
            self.depth[old_side][old_price] -= old_size
        elif action == "M":
            if order_id in self.orders:
                old_side, old_price, old_size = self.orders[order_id]
                self.depth[old_side][old_price] -= old_size
            else:
                self.unknown_references.append(index)
            self.orders[order_id] = (side, price, size)
            self.depth[side][price] += size


def replay(records: np.ndarray) -> Iterator[tuple[int, ReplayBook]]:
    """Yield (record index, book) after every record with F_LAST, one instrument's records."""
    book = ReplayBook()
    actions = records["action"]
    sides = records["side"]
    for index in range(len(records)):
        action = (
            actions[index].decode() if isinstance(actions[index], bytes) else chr(actions[index])
        )
        side = sides[index].decode() if isinstance(sides[index], bytes) else chr(sides[index])
        book.apply(
            index,
            action,
            side,
            int(records["price"][index]),
            int(records["size"][index]),
            int(records["order_id"][index]),
        )
        if records["flags"][index] & F_LAST:
            yield index, book
