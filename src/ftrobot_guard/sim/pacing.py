"""Pacing the physics loop to wall time, and measuring the real-time factor it achieves.

Real-time mode steps the model every ``step_s / real_time_factor`` seconds of wall time. A
:class:`RealTimePacer` says how long to sleep after each step; when the loop has fallen further
behind than ``resync_after_s`` (the machine cannot keep up, or the process was stopped), the
schedule restarts from now instead of catching up in a burst of steps, and the overrun is counted.
A :class:`RealTimeFactorWindow` reports sim seconds per wall second over the last steps. Times are
seconds on one monotonic clock given by the caller. No rclpy, no threads.
"""

from __future__ import annotations

import math
from collections import deque

DEFAULT_RESYNC_AFTER_S = 0.25
DEFAULT_WINDOW_STEPS = 250  # 0.5 s of 2 ms steps


class RealTimePacer:
    """Wall-clock schedule of a fixed-step loop."""

    def __init__(self, step_s: float, real_time_factor: float, start_s: float,
                 resync_after_s: float = DEFAULT_RESYNC_AFTER_S) -> None:
        checked = (("step_s", step_s), ("real_time_factor", real_time_factor), ("resync_after_s", resync_after_s))
        for name, value in checked:
            if not math.isfinite(value) or value <= 0.0:
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        if not math.isfinite(start_s):
            raise ValueError(f"start_s must be finite, got {start_s}")
        self._period_s = step_s / real_time_factor
        self._resync_after_s = resync_after_s
        self._next_s = start_s
        self._overruns = 0

    @property
    def period_s(self) -> float:
        """Wall seconds per step."""
        return self._period_s

    @property
    def overruns(self) -> int:
        """How often the schedule was reset because the loop had fallen too far behind."""
        return self._overruns

    def after_step(self, now_s: float) -> float:
        """A step has just finished at ``now_s``: the seconds to sleep before the next one (0 when late)."""
        self._next_s += self._period_s
        delay = self._next_s - now_s
        if delay > 0.0:
            return delay
        if delay < -self._resync_after_s:
            self._next_s = now_s
            self._overruns += 1
        return 0.0


class RealTimeFactorWindow:
    """Sim seconds per wall second over the last ``size`` samples (NaN until two samples differ in wall time)."""

    def __init__(self, size: int = DEFAULT_WINDOW_STEPS) -> None:
        if size < 2:
            raise ValueError(f"size must be at least 2, got {size}")
        self._samples: deque[tuple[float, float]] = deque(maxlen=size)

    def add(self, wall_s: float, sim_s: float) -> float:
        """Record a (wall, sim) time pair; the factor over the window."""
        self._samples.append((wall_s, sim_s))
        return self.factor

    @property
    def factor(self) -> float:
        if len(self._samples) < 2:
            return math.nan
        (wall_0, sim_0), (wall_1, sim_1) = self._samples[0], self._samples[-1]
        if wall_1 <= wall_0:
            return math.nan
        return (sim_1 - sim_0) / (wall_1 - wall_0)
