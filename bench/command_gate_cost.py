"""Pure cost of the command gate per call (no DDS, no node): what the gate adds to every command.

A 29-joint G1 stream at 500 Hz through :class:`~ftrobot_guard.safety.command_gate.CommandGate`, inputs shaped
as a ``trajectory_msgs/JointTrajectory`` arrives in rclpy (joint names a list of str, the first point's arrays
``array.array('d')``), for the cases:

* ``normal_positions``: NORMAL, positions only, every command forwarded as given;
* ``normal_full``: NORMAL, positions + velocities + feed-forward efforts, forwarded as given;
* ``reduced_clamped``: REDUCED, positions (holding still) + velocity targets of 1.5 rad/s that the hand-speed
  bound clamps in every command;
* ``refused_stale``: a stale stamp (the cheap refusal path);
* ``guard_lowering``: the guard's own lowering stream (``guard_command``, 29 joints);
* ``base_velocity`` and ``task_request``.

Each call is timed alone (perf_counter_ns, garbage collector on, as in the node); prints the median, p99 and
mean in µs and, for joint commands, the share of one core the gate alone takes at 500 Hz and 1 kHz. Then one
JSON object per figure.
"""

from __future__ import annotations

import argparse
import array
import datetime as dt
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ftrobot_guard.safety.command_gate import CommandGate, GateMode
from ftrobot_guard.safety.envelope import load_envelope

ROOT = Path(__file__).resolve().parents[1]
OPEN = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)   # Monday 10:00 in Shanghai: inside service hours
NORMAL = GateMode(True, False, "NORMAL")
REDUCED = GateMode(True, True, "REDUCED")
PERIOD = 0.002                                          # s, 500 Hz


def measure(call: Callable[[int], object], calls: int) -> np.ndarray:
    """µs of each call of ``call(k)``, k = 1..calls (after 200 warm-up calls with k <= 0)."""
    for k in range(-200, 1):
        call(k)
    times = np.empty(calls)
    clock = time.perf_counter_ns
    for k in range(1, calls + 1):
        start = clock()
        call(k)
        times[k - 1] = clock() - start
    return times / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20000, help="timed calls per case")
    args = parser.parse_args()
    envelope = load_envelope(ROOT / "config" / "envelope" / "g1.yaml")
    joints = envelope.joints
    names = list(joints.names)
    stand = (joints.soft_lower + joints.soft_upper) / 2.0
    amplitude = np.minimum(0.2, (joints.soft_upper - joints.soft_lower) / 4.0)
    omega = 2.0 * math.pi * 0.5                                             # 0.5 Hz sway: well inside 6 rad/s
    t0 = 1000.0

    def posture(k: int) -> array.array[float]:
        return array.array("d", stand + amplitude * np.sin(omega * k * PERIOD))

    total = args.calls + 201
    postures = {k: posture(k) for k in range(-200, args.calls + 1)}
    velocities = array.array("d", np.full(len(names), 0.5))
    efforts = array.array("d", np.full(len(names), 1.0))
    arm_velocities = array.array("d", np.full(len(names), 1.5))

    still = array.array("d", stand)

    def stream(mode: GateMode, with_velocities: array.array[float] | None,
               with_efforts: array.array[float] | None, expect: str, moving: bool = True) -> Callable[[int], object]:
        gate = CommandGate(envelope)
        assert gate.reanchor(t0 - 1.0, np.array(postures[-200] if moving else still)) is None
        base = t0 + total * PERIOD  # a fresh stream clock per case

        def call(k: int) -> object:
            now = base + k * PERIOD
            decision = gate.joint_command(now + 0.0003, now, names, postures[k] if moving else still, with_velocities,
                                          with_efforts, mode, OPEN)
            if decision.outcome.value != expect:
                raise RuntimeError(f"expected {expect}, got {decision.outcome.value}: {decision.reason}")
            return decision

        return call

    cases: dict[str, Callable[[int], object]] = {
        "normal_positions": stream(NORMAL, None, None, "accepted"),
        "normal_full": stream(NORMAL, velocities, efforts, "accepted"),
        "reduced_clamped": stream(REDUCED, arm_velocities, None, "clamped", moving=False),
    }
    stale_gate = CommandGate(envelope)
    assert stale_gate.reanchor(t0, stand) is None
    cases["refused_stale"] = lambda k: stale_gate.joint_command(t0 + 1.0 + k * PERIOD, t0 + 0.5, names, postures[k],
                                                                None, None, NORMAL, OPEN)
    lowering_gate = CommandGate(envelope)
    assert lowering_gate.reanchor(t0 - 1.0, np.array(postures[-200])) is None

    def lowering(k: int) -> object:
        decision = lowering_gate.guard_command(t0 + k * PERIOD, postures[k])
        if not decision.forwarded:
            raise RuntimeError(decision.reason)
        return decision

    cases["guard_lowering"] = lowering
    other = CommandGate(envelope)
    cases["base_velocity"] = lambda k: other.base_velocity(t0, [0.3, 0.1, 0.0], [0.0, 0.0, 0.2], NORMAL,
                                                           (1.0, 2.0, 0.3), 0.01, OPEN)
    cases["task_request"] = lambda k: other.task_request(t0, "guide_visitor", NORMAL, OPEN)

    figures: list[tuple[str, float, str]] = []
    print(f"command gate, {len(names)} joints, {args.calls} calls per case (µs per call)")
    print(f"{'case':18s} {'median':>8s} {'p99':>8s} {'mean':>8s}")
    for case, call in cases.items():
        times = measure(call, args.calls)
        median, p99, mean = (float(np.median(times)), float(np.percentile(times, 99)), float(times.mean()))
        print(f"{case:18s} {median:8.1f} {p99:8.1f} {mean:8.1f}")
        figures += [(f"{case}_median_us", median, "us"), (f"{case}_p99_us", p99, "us"), (f"{case}_mean_us", mean, "us")]
        if case in ("normal_full", "reduced_clamped"):
            for rate in (500, 1000):
                share = mean * rate / 1e4
                print(f"{'':18s} gate alone at {rate} Hz: {share:.1f} % of one core")
                figures.append((f"{case}_core_share_{rate}hz_percent", share, "%"))
    distro = os.environ.get("FTROBOT_ROS_DISTRO", os.environ.get("ROS_DISTRO", "none"))
    for figure, value, unit in figures:
        print(json.dumps({"bench": "command_gate_cost", "figure": figure, "value": round(value, 2), "unit": unit,
                          "n": args.calls, "joints": len(names), "distro": distro}))


if __name__ == "__main__":
    main()
