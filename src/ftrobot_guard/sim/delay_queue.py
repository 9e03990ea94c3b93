"""Messages held back until a time: the ``message_delay`` fault's queue.

A delayed output is published ``delay`` seconds of sim time late with its original stamp. Items
come out in order of their due time, and in the order they were put in when due at the same time,
so a topic with a short delay is not held behind another topic's long one. No rclpy.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Generic, TypeVar

T = TypeVar("T")

DUE_TOLERANCE_S = 1e-9  # an item due within this of now counts as due (float sums of 2 ms steps)


class DelayQueue(Generic[T]):
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def put(self, due_s: float, item: T) -> None:
        if not math.isfinite(due_s):
            raise ValueError(f"due time must be finite, got {due_s}")
        heapq.heappush(self._heap, (due_s, next(self._order), item))

    def pop_due(self, now_s: float) -> list[T]:
        """Every item due at ``now_s``, earliest first; they leave the queue."""
        due: list[T] = []
        while self._heap and self._heap[0][0] <= now_s + DUE_TOLERANCE_S:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def clear(self) -> None:
        self._heap.clear()
