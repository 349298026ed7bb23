"""Producing a stream's next items on a second thread while the caller uses the current."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

Item = TypeVar("Item")

AHEAD_ITEMS = 2


def computed_ahead(items: Iterator[Item], depth: int = AHEAD_ITEMS) -> Iterator[Item]:
    """The same items in the same order, computed up to `depth` ahead on a thread of their
    own, so that producing the next overlaps with using this one on the other core (the
    engine's kernels, Arrow and DuckDB release the GIL). The items must not share state with
    what the producer goes on to change; an error raised producing them is raised here."""
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand(message: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                ready.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def compute() -> None:
        try:
            for item in items:
                if not hand(("item", item)):
                    return
        except BaseException as error:  # handed over and raised on the caller's thread
            hand(("error", error))
            return
        hand(("done", None))

    worker = threading.Thread(target=compute, name="computed-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = ready.get()
            if kind == "item":
                yield item
            elif kind == "error":
                raise item
            else:
                return
    finally:
        stop.set()
        worker.join()
