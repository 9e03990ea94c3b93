"""Model load time, pure-API simulation speed, and how each stop mode lets the G1 fall.

* model_load_s: compiling the G1 from the installed assets package, in fresh processes (cold imports
  excluded: mujoco is imported first and only load_g1() is timed).
* pure_sim_rtf: HumanoidSim.step() without ROS, standing in NORMAL (sim s per wall s, one core).
* fall figures: time until the pelvis is below 0.4 m and peak impact speed, for POWER_OFF,
  ZERO_TORQUE and DAMPING from the stand pose.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

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
        sim.run_for(5.0)
        r = sim.recorder
        below = next((t for t, h in zip(r.times, r.pelvis_height, strict=True) if h < 0.4), float("nan"))
        falls[mode.name] = (below, r.peak_impact_speed)
        print(f"{mode.name:12s}: pelvis below 0.4 m after {below:.2f} s, peak impact {r.peak_impact_speed:.2f} m/s")

    lines = [figure("model_load_s", statistics.median(loads), "s", LOAD_RUNS), figure("pure_sim_rtf", pure_rtf, "x", 5000)]
    for name, (below, impact) in falls.items():
        lines.append(figure(f"fall_time_{name.lower()}_s", below, "s", 1))
        lines.append(figure(f"peak_impact_{name.lower()}_mps", impact, "m/s", 1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
