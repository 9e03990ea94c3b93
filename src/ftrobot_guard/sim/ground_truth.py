"""Ground truth for judging outcomes: posture, falls, impacts, and how fast actuation modes changed.

Not available on a real robot; tests and benchmarks score what the guard did with it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.sim.faults import Fault


@dataclass(frozen=True)
class FallCriteria:
    pelvis_height_m: float = 0.40   # standing G1: 0.79 m
    tilt_rad: float = 1.0           # torso up axis vs world up


def tilt_of(rotation: np.ndarray) -> float:
    """Angle between a body's z axis (rotation matrix, row-major 3x3 or 9) and world up."""
    r = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    return float(math.acos(max(-1.0, min(1.0, r[2, 2]))))


@dataclass(frozen=True)
class ImpactRecord:
    """A floor strike: sim time, the body that struck, its contact point's approach speed (m/s)."""

    time: float
    body: str
    speed: float


@dataclass(frozen=True)
class GroundTruthSample:
    time: float
    pelvis_height: float
    tilt: float
    fallen: bool
    peak_impact_speed: float       # m/s, largest contact-point approach speed at a floor-contact onset (not feet)
    mode: ActuationMode
    active_faults: tuple[str, ...]
    real_time_factor: float = math.nan


@dataclass(frozen=True)
class ModeChange:
    time: float
    previous: ActuationMode
    mode: ActuationMode
    source: str     # "request" (hw/set_actuation_mode), "api", "guard_alive_timeout", "battery_empty", ...
    reason: str


@dataclass(frozen=True)
class ModeChangeLatency:
    fault_id: str
    kind: str
    onset: float
    mode: str
    source: str
    time: float
    latency: float


@dataclass
class GroundTruthRecorder:
    """Time series (decimated), mode changes, fault onsets and the first fall."""

    period_s: float = 0.01
    times: list[float] = field(default_factory=list)
    pelvis_height: list[float] = field(default_factory=list)
    tilt: list[float] = field(default_factory=list)
    mode: list[int] = field(default_factory=list)
    mode_changes: list[ModeChange] = field(default_factory=list)
    first_fall_time: float | None = None
    peak_impact_speed: float = 0.0
    _next_sample: float = 0.0

    @property
    def next_sample_time(self) -> float:
        """Sim time from which the next observation is recorded (callers may skip samples before it)."""
        return self._next_sample

    def observe(self, sample: GroundTruthSample) -> None:
        if sample.fallen and self.first_fall_time is None:
            self.first_fall_time = sample.time
        self.peak_impact_speed = max(self.peak_impact_speed, sample.peak_impact_speed)
        if sample.time + 1e-12 >= self._next_sample:
            self._next_sample = sample.time + self.period_s
            self.times.append(sample.time)
            self.pelvis_height.append(sample.pelvis_height)
            self.tilt.append(sample.tilt)
            self.mode.append(int(sample.mode))

    def mode_changed(self, change: ModeChange) -> None:
        self.mode_changes.append(change)

    def latencies(self, faults: list[Fault]) -> list[ModeChangeLatency]:
        """For every fault, each actuation-mode change at or after its onset, with the delay."""
        result = []
        for fault in faults:
            for change in self.mode_changes:
                if change.time >= fault.onset:
                    result.append(
                        ModeChangeLatency(
                            fault.fault_id, fault.kind.value, fault.onset, change.mode.name, change.source,
                            change.time, change.time - fault.onset,
                        )
                    )
        return result

    def summary(self, faults: list[Fault]) -> dict[str, Any]:
        return {
            "first_fall_time": self.first_fall_time,
            "peak_impact_speed": self.peak_impact_speed,
            "min_pelvis_height": min(self.pelvis_height) if self.pelvis_height else None,
            "max_tilt": max(self.tilt) if self.tilt else None,
            "faults": [
                {"fault_id": f.fault_id, "kind": f.kind.value, "onset": f.onset,
                 "end": None if math.isinf(f.end) else f.end, "parameters": dict(f.parameters)}
                for f in faults
            ],
            "mode_changes": [
                {"time": c.time, "previous": c.previous.name, "mode": c.mode.name, "source": c.source,
                 "reason": c.reason}
                for c in self.mode_changes
            ],
            "latencies": [asdict(latency) for latency in self.latencies(faults)],
        }

    def write_json(self, path: Path, faults: list[Fault]) -> None:
        """Summary plus the decimated series, for scoring after a run."""
        document = self.summary(faults)
        document["series"] = {
            "time": self.times, "pelvis_height": self.pelvis_height, "tilt": self.tilt,
            "mode": [ActuationMode(m).name for m in self.mode],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(document, indent=1, allow_nan=False))
        tmp.replace(path)
