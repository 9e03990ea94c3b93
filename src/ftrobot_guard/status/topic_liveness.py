"""Liveness of watched input topics: when each last delivered a message, and whether that is too long ago."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TopicHealthView:
    topic: str
    ever_received: bool
    age_s: float  # 0.0 when never received
    max_age_s: float
    healthy: bool


class TopicWatch:
    """Receive times per topic, on one monotonic clock (seconds) supplied by the caller."""

    def __init__(self, topics: list[str], max_age_s: float, start_s: float) -> None:
        if not math.isfinite(max_age_s) or max_age_s <= 0.0:
            raise ValueError(f"max_age_s must be a positive finite number of seconds, got {max_age_s}")
        if len(set(topics)) != len(topics):
            raise ValueError(f"watched topics must be unique, got {topics}")
        self._max_age_s = max_age_s
        self._start_s = start_s
        self._last: dict[str, float | None] = dict.fromkeys(topics)

    @property
    def topics(self) -> list[str]:
        return list(self._last)

    def mark(self, topic: str, now_s: float) -> None:
        """Record that ``topic`` delivered a message at ``now_s``."""
        if topic not in self._last:
            raise KeyError(f"topic {topic!r} is not watched")
        self._last[topic] = now_s

    def health(self, now_s: float) -> list[TopicHealthView]:
        views = []
        for topic, last in self._last.items():
            if last is None:
                views.append(TopicHealthView(topic, False, 0.0, self._max_age_s, False))
            else:
                age = max(0.0, now_s - last)
                views.append(TopicHealthView(topic, True, age, self._max_age_s, age <= self._max_age_s))
        return views

    def all_healthy(self, now_s: float) -> bool:
        return all(view.healthy for view in self.health(now_s))
