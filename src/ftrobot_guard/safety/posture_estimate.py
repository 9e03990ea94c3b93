"""The measured posture with the encoders' noise averaged out: where a stream of joint targets starts.

A stream of joint targets that starts at one raw ``joint_states`` reading starts with that reading's noise: at
0.01 rad of encoder noise (bench/power_down_trials.py) every joint's first target is off by up to ~0.03 rad,
and the driver's PD turns that into a jolt. Standing, the G1 has 1.1 cm of centre of pressure to spare behind
it under a 15 N push at the chest; an ankle target 0.01 rad off is a third of the lean that holds it
(docs/design.md "Early pushes"), so whether the robot fell under a push at the start of the lowering depended on
the noise of one sample.

:class:`PostureEstimate` keeps the readings of the last ``window`` seconds and fits a straight line per joint
(least squares in time), evaluated at the newest reading: a joint standing still gets the mean (noise / sqrt(n));
a joint moving at constant speed gets its position now, without the lag of a mean. At 500 Hz and the default
0.1 s window, 50 readings: the noise of the estimate is about 2 / sqrt(50) = 0.28 of one reading's. A joint
whose readings in the window are not all finite gets its newest reading (a broken reading stays broken, and the
sequencer falls back on it). Pure: numpy only.
"""

from __future__ import annotations

import math

import numpy as np

MIN_READINGS = 3   # fewer readings in the window: the newest reading as it is


class PostureEstimate:
    """Recent joint readings (model order) and the least-squares posture at the newest one."""

    def __init__(self, count: int, window: float = 0.1, capacity: int = 256) -> None:
        if count < 0:
            raise ValueError(f"posture estimate: joint count must not be negative, got {count}")
        if not (math.isfinite(window) and 0.0 < window <= 10.0):
            raise ValueError(f"posture estimate: window must be within (0, 10] s, got {window!r}")
        if capacity < MIN_READINGS:
            raise ValueError(f"posture estimate: capacity must be at least {MIN_READINGS}, got {capacity}")
        self._window = float(window)
        self._times = np.full(capacity, math.nan)
        self._readings = np.full((capacity, count), math.nan)
        self._next = 0
        self._count = 0

    def add(self, stamp: float, positions: np.ndarray) -> None:
        """One reading (every joint, model order; NaN where unknown) taken at ``stamp`` (s).
        A time before the newest one (a clock going back, a stamp from the future before it) starts the history
        again: the estimate is then the newest reading until readings accumulate."""
        if np.shape(positions) != self._readings.shape[1:]:
            raise ValueError(f"posture estimate: {self._readings.shape[1]} positions expected, "
                             f"got shape {np.shape(positions)}")
        if not math.isfinite(stamp):
            return
        if self._count and stamp < self.newest_time:
            self._count = 0
        self._times[self._next] = stamp
        self._readings[self._next] = positions
        self._next = (self._next + 1) % self._times.size
        self._count = min(self._count + 1, self._times.size)

    def readings_in_window(self) -> int:
        """How many readings the estimate would average now."""
        if not self._count:
            return 0
        order = (self._next - 1 - np.arange(self._count)) % self._times.size
        return int(np.count_nonzero(self._times[order] >= self._times[order[0]] - self._window))

    @property
    def newest_time(self) -> float:
        return float(self._times[self._next - 1]) if self._count else math.nan

    def estimate(self) -> np.ndarray:
        """The posture at the newest reading (module docstring); all NaN before any reading."""
        if not self._count:
            return np.full(self._readings.shape[1], math.nan)
        newest: np.ndarray = self._readings[self._next - 1].copy()
        order = (self._next - 1 - np.arange(self._count)) % self._times.size   # newest first
        times = self._times[order] - self._times[order[0]]                  # <= 0
        recent = times >= -self._window
        if int(np.count_nonzero(recent)) < MIN_READINGS:
            return newest
        t = times[recent]
        q = self._readings[order[recent]]
        t_mean = float(np.mean(t))
        spread = float(np.sum((t - t_mean) ** 2))
        with np.errstate(invalid="ignore"):
            q_mean = np.mean(q, axis=0)
            slope = (t - t_mean) @ (q - q_mean) / spread if spread > 0.0 else np.zeros_like(q_mean)
            fitted = q_mean - slope * t_mean
        finite = np.all(np.isfinite(q), axis=0)
        estimated: np.ndarray = np.where(finite, fitted, newest)
        return estimated
