"""Which outputs are due at a simulation step: one rate per topic, in sim time.

A topic at ``rate_hz`` is due at its first step and then once per period. When the steps are
coarser than the period (or the simulation skips ahead), it is due once, not once per missed
period: the schedule moves on from the current time. No rclpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

DUE_TOLERANCE_S = 1e-9


class TopicRate:
    """Publication schedule of one topic."""

    def __init__(self, rate_hz: float) -> None:
        if not math.isfinite(rate_hz) or rate_hz <= 0.0:
            raise ValueError(f"rate must be a positive finite number of Hz, got {rate_hz}")
        self.period_s = 1.0 / rate_hz
        self._next_s = 0.0

    def due(self, sim_time_s: float) -> bool:
        """True when the topic is published at this step (then its next time is one period on)."""
        if sim_time_s + DUE_TOLERANCE_S < self._next_s:
            return False
        self._next_s += self.period_s
        if self._next_s + DUE_TOLERANCE_S < sim_time_s:  # more than a period behind: restart from now
            self._next_s = sim_time_s + self.period_s
        return True


class PublicationSchedule:
    """One :class:`TopicRate` per topic."""

    def __init__(self, rates_hz: Mapping[str, float]) -> None:
        self._rates = {topic: TopicRate(rate) for topic, rate in rates_hz.items()}

    @property
    def topics(self) -> list[str]:
        return list(self._rates)

    def due(self, sim_time_s: float) -> list[str]:
        """The topics published at this step, in the order they were given."""
        return [topic for topic, rate in self._rates.items() if rate.due(sim_time_s)]
