"""A nominal run: the simulated G1 standing while both arms swing inside the envelope, through the guard, for
``--minutes`` (issue 8: 10 minutes with zero stops). A benchmark, not a CI test: it takes the time it says.

Starts the MuJoCo simulator (real time, ``config/sim.yaml``) and ``ftrobot up guard`` (its own process, with a
development department's credentials as on a robot: bench/bench_guard.py's ``make_bench_files``), waits for
NORMAL, then streams ``guard/in/joint_command`` at 100 Hz: shoulder pitch and elbow of both arms on a 0.25 Hz
sine of 0.25 rad around their measured posture, as the demo's controller does (src/ftrobot_guard/cli/demo_guard.py). It watches ``safety_state``, ``anomalies``
and the simulator's ground truth the whole time, and prints at the end:

* every safety-mode change after NORMAL (a stop is any of them), and every active anomaly of WARNING or above;
* the simulator's actuation-mode changes, whether the robot fell, and the lowest real-time factor;
* the guard's CPU (share of one core, /proc) and the commands published and forwarded (the gate's own counts
  from ``/diagnostics``).

Exit status 0 when the run had zero stops and the robot never fell.

    python bench/nominal_run.py [--minutes 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from guard_kill_trials import START_TIMEOUT_S, fresh_namespace, start_simulated_robot

ARM_JOINTS = ("left_shoulder_pitch_joint", "left_elbow_joint", "right_shoulder_pitch_joint", "right_elbow_joint")
ARM_SIGNS = (1.0, 1.0, -1.0, 1.0)   # the demo's swing: shoulders in opposition
AMPLITUDE_RAD = 0.25
FREQUENCY_HZ = 0.25
COMMAND_RATE_HZ = 100.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(minutes: float, domain: int, directory: Path) -> dict[str, Any]:
    import rclpy
    from bench_guard import Spinner
    from diagnostic_msgs.msg import DiagnosticArray
    from ftrobot_msgs.msg import Anomaly, SafetyState, SimGroundTruth
    from rclpy.context import Context
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from ftrobot_guard.ros.qos_profiles import COMMANDS, EVENTS, LATCHED, SENSOR_DATA
    from ftrobot_guard.ros.stack_runner import stop_processes

    namespace = fresh_namespace("nominal")
    context = Context()   # the bench joins first (bench/guard_kill_trials.py says why)
    rclpy.init(context=context, domain_id=domain)
    node = Node("bench_controller", context=context, namespace=namespace)
    sim, guard = start_simulated_robot(directory, domain, namespace)
    states: list[SafetyState] = []
    anomalies: list[str] = []
    actuation: list[str] = []
    lowest_rtf = [math.inf]
    fell = [False]
    gate: dict[str, int] = {}
    measured: dict[str, float] = {}

    def on_joints(msg: JointState) -> None:
        measured.update(zip(msg.name, msg.position, strict=False))

    def on_truth(msg: SimGroundTruth) -> None:
        if not actuation or actuation[-1] != msg.actuation_mode_name:
            actuation.append(msg.actuation_mode_name)
        if msg.real_time_factor > 0.0 and states and states[-1].mode_name == "NORMAL":
            lowest_rtf[0] = min(lowest_rtf[0], msg.real_time_factor)
        fell[0] = fell[0] or msg.fallen

    def on_anomaly(msg: Anomaly) -> None:
        if msg.active and msg.severity >= Anomaly.SEVERITY_WARNING:
            anomalies.append(f"{msg.detector}/{msg.kind} ({msg.subject}): {msg.description[:120]}")

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(": gate"):
                gate.update({kv.key: int(kv.value) for kv in status.values if kv.key.startswith("joint_command ")})

    node.create_subscription(SimGroundTruth, "sim/ground_truth", on_truth, COMMANDS)
    node.create_subscription(SafetyState, "safety_state",
                             lambda m: states.append(m) if not states or states[-1].transition_count !=
                             m.transition_count else None, LATCHED)
    node.create_subscription(Anomaly, "anomalies", on_anomaly, EVENTS)
    node.create_subscription(JointState, "joint_states", on_joints, SENSOR_DATA)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    publisher = node.create_publisher(JointTrajectory, "guard/in/joint_command", COMMANDS)
    spinner = Spinner(context, node, "bench_controller")
    result: dict[str, Any] = {"ok": False, "minutes": minutes}
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and not (states and states[-1].mode_name == "NORMAL"):
            time.sleep(0.05)
        if not (states and states[-1].mode_name == "NORMAL"):
            result["error"] = f"guard never NORMAL (last {states[-1].mode_name if states else 'none'})"
            return result
        time.sleep(1.0)   # the guard re-anchors once the hardware confirms NORMAL
        origin = [measured[name] for name in ARM_JOINTS]
        normal_at = len(states)
        anomalies.clear()
        cpu0, wall0 = _cpu_seconds(guard.pid), time.monotonic()
        published = 0
        period = 1.0 / COMMAND_RATE_HZ
        next_t = wall0
        end = wall0 + minutes * 60.0
        last_report = wall0
        while time.monotonic() < end and guard.poll() is None and sim.poll() is None:
            t = time.monotonic() - wall0
            swing = AMPLITUDE_RAD * math.sin(2.0 * math.pi * FREQUENCY_HZ * t)   # starts at the measured posture
            msg = JointTrajectory(joint_names=list(ARM_JOINTS))
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.points = [JointTrajectoryPoint(positions=[q + sign * swing for q, sign in zip(origin, ARM_SIGNS,
                                                                                                strict=True)])]
            publisher.publish(msg)
            published += 1
            if time.monotonic() - last_report >= 60.0:
                last_report = time.monotonic()
                print(f"  {t / 60.0:4.1f} min: mode {states[-1].mode_name}, {published} commands, "
                      f"{len(anomalies)} anomalies", flush=True)
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))
        elapsed = time.monotonic() - wall0
        cpu = _cpu_seconds(guard.pid) - cpu0 if guard.poll() is None else math.nan
        time.sleep(1.5)   # the next /diagnostics carries the final counts
        stops = [f"{s.mode_name} from {s.source}: {s.cause}" for s in states[normal_at:]]
        result.update(ok=not stops and not fell[0], seconds=round(elapsed, 1), published=published,
                      gate=dict(gate), stops=stops, anomalies=anomalies[:50], anomaly_count=len(anomalies),
                      actuation_modes=actuation, fell=fell[0], lowest_real_time_factor=lowest_rtf[0],
                      guard_cpu_percent=round(100.0 * cpu / elapsed, 1))
        return result
    finally:
        spinner.stop()
        node.destroy_node()
        rclpy.shutdown(context=context)
        stop_processes(guard, sim)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--domain", type=int, default=150 + os.getpid() % 50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftrobot-nominal-") as tmp:
        result = run(args.minutes, args.domain, Path(tmp))
    if "error" in result:
        print(f"FAILED: {result['error']}")
        return 1
    print(f"nominal run: {result['seconds']:.0f} s, {result['published']} arm commands at {COMMAND_RATE_HZ:g} Hz; "
          f"gate {result['gate']}")
    print(f"  stops: {len(result['stops'])}" + "".join(f"\n    {s}" for s in result["stops"]))
    print(f"  anomalies (WARNING and above): {result['anomaly_count']}"
          + "".join(f"\n    {a}" for a in result["anomalies"][:10]))
    print(f"  simulator: actuation modes {result['actuation_modes']}, fell {result['fell']}, lowest real-time "
          f"factor {result['lowest_real_time_factor']:.2f}; guard CPU {result['guard_cpu_percent']} % of a core")
    for figure, value, unit in (("stops", len(result["stops"]), "count"), ("anomalies", result["anomaly_count"], "count"),
                                ("fell", int(result["fell"]), "bool"), ("commands", result["published"], "count"),
                                ("guard_cpu", result["guard_cpu_percent"], "%"),
                                ("lowest_real_time_factor", round(result["lowest_real_time_factor"], 3), "ratio")):
        print(json.dumps({"bench": "nominal_run", "figure": figure, "value": value, "unit": unit,
                          "minutes": result["minutes"]}))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
