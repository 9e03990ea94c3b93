"""Model load time, pure-API simulation speed, and how each stop mode lets the G1 fall.

* model_load_s: compiling the G1 from the installed assets package, in fresh processes (cold imports
  excluded: mujoco is imported first and only load_g1() is timed).
* pure_sim_rtf: HumanoidSim.step() without ROS, standing in NORMAL (sim s per wall s, one core).
* fall figures: time until the pelvis is below 0.4 m and peak impact speed, for POWER_OFF,
  ZERO_TORQUE and DAMPING from the stand pose; and for a `trip` (0.2 s, 250 N, each direction) while
  standing in NORMAL, answered when the guard would see the fall (gyro above 3 rad/s or tilt above
  0.5 rad) by POWER_OFF or DAMPING, or not at all (the joints stay stiff).
* impact measure: the simulator's (a contact point's approach speed along the floor normal at contact
  onset, feet excluded) and, for comparison, the measure it replaced (the largest centre speed of a
  non-foot body touching the floor at any step, sliding and rolling included), computed here.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ftrobot_guard.sim.humanoid_sim import HumanoidSim

DISTRO = os.environ.get("FTROBOT_ROS_DISTRO") or os.environ.get("ROS_DISTRO") or "unknown"
LOAD_RUNS = 5
LOAD_SNIPPET = """
import time, mujoco
from ftrobot_guard.sim.g1_model import load_g1
t = time.perf_counter(); load_g1(); print(time.perf_counter() - t)
"""


def figure(name: str, value: float, unit: str, n: int) -> str:
    return json.dumps({"bench": "sim_model_and_falls", "figure": name, "value": round(value, 4), "unit": unit,
                       "n": n, "distro": DISTRO})


class LegacyImpact:
    """The impact measure before issue 8: the largest centre speed of a non-foot body touching the floor."""

    def __init__(self, sim: HumanoidSim) -> None:
        self.peak = 0.0
        self._skip = {0, *sim.g1.foot_bodies}

    def observe(self, sim: HumanoidSim) -> None:
        import mujoco
        import numpy as np

        data, velocity = sim.data, np.zeros(6)
        for i in range(data.ncon):
            geoms = data.contact.geom[i]
            if sim.g1.floor_geom not in geoms:
                continue
            other = int(geoms[1] if geoms[0] == sim.g1.floor_geom else geoms[0])
            body = int(sim.model.geom_bodyid[other])
            if body not in self._skip:
                mujoco.mj_objectVelocity(sim.model, data, mujoco.mjtObj.mjOBJ_BODY, body, velocity, 0)
                self.peak = max(self.peak, float(np.linalg.norm(velocity[3:6])))


def describe(sim: HumanoidSim) -> str:
    peak = sim.peak_impact
    return f"{peak.body} at {peak.time:.2f} s" if peak else "no strike"


def fall_seen(sim: HumanoidSim) -> bool:
    import numpy as np

    imu = sim.imu()
    return float(np.linalg.norm(imu.angular_velocity)) > 3.0 or sim.ground_truth().tilt > 0.5


def trip_fall(direction: str, response: str) -> tuple[float, float]:
    """A trip while standing in NORMAL; `response` (an actuation mode name, or "stiff") once the fall is seen."""
    from ftrobot_guard.hardware.actuation_modes import ActuationMode
    from ftrobot_guard.sim.humanoid_sim import HumanoidSim, SimConfig

    sim = HumanoidSim(SimConfig(require_guard_alive=False))
    sim.set_actuation_mode(ActuationMode.NORMAL)
    sim.inject_fault("trip", 0.2, 0.2, {"direction": direction, "force": 250.0})
    legacy = LegacyImpact(sim)
    answered = [response == "stiff"]

    def on_step(s: HumanoidSim) -> None:
        legacy.observe(s)
        if not answered[0] and s.time > 0.2 and fall_seen(s):
            s.set_actuation_mode(ActuationMode[response])
            answered[0] = True

    sim.run_for(4.0, on_step)
    return sim.ground_truth().peak_impact_speed, legacy.peak


def main() -> None:
    loads = [float(subprocess.run([sys.executable, "-c", LOAD_SNIPPET], capture_output=True, text=True, check=True)
                   .stdout.strip()) for _ in range(LOAD_RUNS)]
    print(f"model load: median {statistics.median(loads):.3f} s, max {max(loads):.3f} s over {LOAD_RUNS} fresh processes")

    from ftrobot_guard.hardware.actuation_modes import ActuationMode
    from ftrobot_guard.sim.humanoid_sim import HumanoidSim, SimConfig

    sim = HumanoidSim(SimConfig(require_guard_alive=False))
    sim.set_actuation_mode(ActuationMode.NORMAL)
    started = time.perf_counter()
    sim.run_for(10.0)
    pure_rtf = 10.0 / (time.perf_counter() - started)
    print(f"pure HumanoidSim speed standing in NORMAL: {pure_rtf:.1f}x real time")

    falls = {}
    for mode in (ActuationMode.POWER_OFF, ActuationMode.ZERO_TORQUE, ActuationMode.DAMPING):
        sim = HumanoidSim(SimConfig(require_guard_alive=False))
        sim.set_actuation_mode(mode)
        legacy = LegacyImpact(sim)
        sim.run_for(5.0, legacy.observe)
        r = sim.recorder
        below = next((t for t, h in zip(r.times, r.pelvis_height, strict=True) if h < 0.4), float("nan"))
        falls[mode.name] = (below, sim.ground_truth().peak_impact_speed)
        print(f"{mode.name:12s}: pelvis below 0.4 m after {below:.2f} s, peak impact {falls[mode.name][1]:.2f} m/s "
              f"({describe(sim)}); old measure {legacy.peak:.2f} m/s")
    trips = {}
    for response in ("stiff", "POWER_OFF", "DAMPING"):
        worst = 0.0
        for direction in ("forward", "backward", "left", "right"):
            peak, old = trip_fall(direction, response)
            worst = max(worst, peak)
            print(f"trip {direction:8s} answered by {response:9s}: peak impact {peak:.2f} m/s; old measure {old:.2f} m/s")
        trips[response] = worst

    lines = [figure("model_load_s", statistics.median(loads), "s", LOAD_RUNS), figure("pure_sim_rtf", pure_rtf, "x", 5000)]
    for name, (below, impact) in falls.items():
        lines.append(figure(f"fall_time_{name.lower()}_s", below, "s", 1))
        lines.append(figure(f"peak_impact_{name.lower()}_mps", impact, "m/s", 1))
    for response, worst in trips.items():
        lines.append(figure(f"trip_peak_impact_{response.lower()}_max_mps", worst, "m/s", 4))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
