"""Time-series figure of a scenario: pelvis height, torso tilt and actuation mode, fault windows shaded."""

from __future__ import annotations

import math
from pathlib import Path

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.sim.faults import Fault
from ftrobot_guard.sim.ground_truth import FallCriteria, GroundTruthRecorder


def plot_scenario(recorder: GroundTruthRecorder, faults: list[Fault], path: Path, title: str = "",
                  fall: FallCriteria | None = None) -> Path:
    """Write a PNG with three stacked panels; the path written."""
    fall = fall if fall is not None else FallCriteria()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (ax_h, ax_t, ax_m) = plt.subplots(3, 1, sharex=True, figsize=(8, 6.5), constrained_layout=True)
    t = recorder.times
    ax_h.plot(t, recorder.pelvis_height, color="tab:blue")
    ax_h.axhline(fall.pelvis_height_m, color="tab:red", linestyle="--", linewidth=0.8, label="fall threshold")
    ax_h.set_ylabel("pelvis height [m]")
    ax_h.legend(loc="upper right", fontsize=8)
    ax_t.plot(t, [math.degrees(v) for v in recorder.tilt], color="tab:orange")
    ax_t.axhline(math.degrees(fall.tilt_rad), color="tab:red", linestyle="--", linewidth=0.8)
    ax_t.set_ylabel("torso tilt [deg]")
    ax_m.step(t, recorder.mode, where="post", color="tab:green")
    ax_m.set_yticks([m.value for m in ActuationMode], [m.name for m in ActuationMode], fontsize=8)
    ax_m.set_ylim(-0.5, len(ActuationMode) - 0.5)
    ax_m.invert_yaxis()
    ax_m.set_ylabel("actuation mode")
    ax_m.set_xlabel("sim time [s]")
    end = t[-1] if t else 0.0
    for fault in faults:
        stop = min(fault.end, end)
        for axis in (ax_h, ax_t, ax_m):
            if stop > fault.onset:
                axis.axvspan(fault.onset, stop, color="tab:red", alpha=0.12)
            axis.axvline(fault.onset, color="tab:red", linewidth=0.8)
        ax_h.annotate(fault.kind.value, (fault.onset, ax_h.get_ylim()[1]), fontsize=8, color="tab:red",
                      xytext=(2, -10), textcoords="offset points")
    if recorder.first_fall_time is not None:
        for axis in (ax_h, ax_t, ax_m):
            axis.axvline(recorder.first_fall_time, color="black", linestyle=":", linewidth=0.8)
    if title:
        figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
