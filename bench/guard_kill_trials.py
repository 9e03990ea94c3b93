"""A guard process killed with SIGKILL during arm motion: how long until the simulated G1 is in DAMPING?

Each trial starts the simulator (real time, ground truth at 500 Hz) and `ftrobot up guard` (its own
process, with a development department's credentials as on a robot: bench/bench_guard.py's
``make_bench_files``: robot key and certificate, the signed envelope, ``state_directory``, a guardian registry
with the operator on duty), moves the left arm through the
guard at 100 Hz until it is forwarding, kills the guard with SIGKILL, and times the first ground-truth
sample in DAMPING against the kill (both on the wall clock: the simulator stamps its messages with it
in real-time mode). Prints each trial and the summary; target: every trial within 100 ms.

A trial in which the robot never got to arm motion (the guard never NORMAL, or it stopped the robot before the
kill: on this machine a Fast DDS stall of ~0.33 s makes its inputs stale, docs/design.md "Known limit") kills
nothing that moves: it is *void*, counted and printed with its reason, and another attempt is made, up to
``--max-attempts`` (default twice the trials). A kill during motion that is not followed by DAMPING within 100
ms is a failure.

    python bench/guard_kill_trials.py --trials 20 [--max-attempts 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0


def _files(directory: Path) -> tuple[Path, Path]:
    """The guard's params file (bench_guard.make_bench_files: robot credentials, signed envelope, state directory,
    guardian registry; this bench's controller allowed on guard/in/joint_command) and the simulator's overrides."""
    from bench_guard import make_bench_files

    guard = make_bench_files(directory, ["guard/in/joint_command=/*/bench_controller"]).params
    sim = directory / "sim.yaml"
    sim.write_text(yaml.safe_dump({"/**/humanoid_sim": {"ros__parameters": {"ground_truth_rate_hz": 500.0}}}),
                   encoding="utf-8")
    return guard, sim


def fresh_namespace(prefix: str) -> str:
    return f"/{prefix}_{uuid.uuid4().hex[:6]}"


def start_simulated_robot(directory: Path, domain: int, namespace: str
                          ) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """The MuJoCo simulator and `ftrobot up guard` in ``namespace``, their logs in ``directory`` (sim.log,
    guard.log): (sim, guard)."""
    from bench_guard import ros_environment

    directory.mkdir(parents=True, exist_ok=True)
    guard_params, sim_params = _files(directory)
    env = ros_environment(domain)
    main = [sys.executable, "-m", "ftrobot_guard.cli.main", "up"]
    with open(directory / "sim.log", "wb") as sim_log, open(directory / "guard.log", "wb") as guard_log:
        sim = subprocess.Popen([*main, "sim", "--headless", "--namespace", namespace, "--params",
                                str(REPO / "config" / "sim.yaml"), "--params", str(sim_params)],
                               stdout=sim_log, stderr=subprocess.STDOUT, env=env)
        guard = subprocess.Popen([*main, "guard", "--namespace", namespace, "--params", str(guard_params)],
                                 stdout=guard_log, stderr=subprocess.STDOUT, env=env)
    return sim, guard


def _stamp(truth: Any) -> float:
    """A ground-truth sample's header stamp (the simulator's wall clock in real-time mode), in s."""
    return float(truth.header.stamp.sec + truth.header.stamp.nanosec * 1e-9)


def trial(directory: Path, domain: int) -> dict[str, Any]:
    import rclpy
    from bench_guard import Spinner
    from ftrobot_msgs.msg import SafetyState, SimGroundTruth
    from rclpy.context import Context
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from ftrobot_guard.ros.qos_profiles import COMMANDS, LATCHED, SENSOR_DATA
    from ftrobot_guard.ros.stack_runner import stop_processes

    # The bench's own participant joins the domain before the robot's processes start: a participant joining
    # mid-trial can block a publish() in the simulator or the guard for 333 ms (Fast DDS shared memory, see
    # docs/design.md, hardware contract, "Known limit"), and the bench would be measuring its own arrival.
    namespace = fresh_namespace("kill")
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    node = Node("bench_controller", context=context, namespace=namespace)
    sim, guard = start_simulated_robot(directory, domain, namespace)
    truth: list[tuple[float, SimGroundTruth]] = []
    states: list[SafetyState] = []
    node.create_subscription(SimGroundTruth, "sim/ground_truth", lambda m: truth.append((time.time(), m)), COMMANDS)
    node.create_subscription(SafetyState, "safety_state", states.append, LATCHED)
    measured: dict[str, float] = {}
    node.create_subscription(JointState, "joint_states", lambda m: measured.update(zip(m.name, m.position,
                                                                                      strict=False)), SENSOR_DATA)
    publisher = node.create_publisher(JointTrajectory, "guard/in/joint_command", COMMANDS)
    spinner = Spinner(context, node, "bench_controller")
    result: dict[str, Any] = {"ok": False}
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and not (states and states[-1].mode_name == "NORMAL" and truth
                                                  and truth[-1][1].actuation_mode_name == "NORMAL"):
            time.sleep(0.05)
        if not (states and states[-1].mode_name == "NORMAL"):
            last = f"{states[-1].mode_name}: {states[-1].cause}" if states else "no safety_state"
            was_normal = any(state.mode_name == "NORMAL" for state in states)
            # A stop before the kill (a Fast DDS stall: stale inputs, or the driver's watchdog) voids the trial.
            result["error"] = (f"the guard stopped the robot before the kill ({last})" if was_normal
                               else f"guard never NORMAL ({last})")
            result["void"] = True
            return result
        time.sleep(1.0)   # re-anchored and forwarding once the hardware confirms NORMAL
        start = time.monotonic()
        start_wall = time.time()
        base = measured["left_elbow_joint"]   # the swing starts where the elbow is
        while time.monotonic() - start < 1.5:  # arm motion through the guard, 100 Hz
            t = time.monotonic() - start
            msg = JointTrajectory(joint_names=["left_elbow_joint"])
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.points = [JointTrajectoryPoint(positions=[base + 0.2 * math.sin(2.0 * t)])]
            publisher.publish(msg)
            time.sleep(0.01)
        early = next((m for _, m in list(truth) if m.actuation_mode_name != "NORMAL"
                      and _stamp(m) > start_wall), None)
        if early is not None:   # the robot left NORMAL while the guard was alive: a false trip, not a figure
            result["error"] = (f"{early.actuation_mode_name} before the kill (the guard's state: "
                               f"{states[-1].mode_name if states else 'none'}, rtf {early.real_time_factor:.2f})")
            result["void"] = True
            return result
        killed_at = time.time()
        guard.send_signal(signal.SIGKILL)
        guard.wait()
        deadline = time.monotonic() + 5.0
        damped = None
        while time.monotonic() < deadline and damped is None:
            damped = next((m for _, m in list(truth) if m.actuation_mode_name == "DAMPING"
                           and _stamp(m) >= killed_at - 0.2), None)
            time.sleep(0.01)
        if damped is None:
            result["error"] = "no DAMPING within 5 s of the kill"
            return result
        stamp = _stamp(damped)
        result.update(ok=True, kill_to_damping_ms=(stamp - killed_at) * 1000.0, pelvis_height=damped.pelvis_height,
                      real_time_factor=damped.real_time_factor)
        return result
    finally:
        spinner.stop()
        node.destroy_node()
        rclpy.shutdown(context=context)
        stop_processes(guard, sim)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--domain", type=int, default=150 + os.getpid() % 50)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="keep each trial's files and logs (sim.log, guard.log) here")
    parser.add_argument("--max-attempts", type=int, help="attempts at most, void ones included (default 2 x trials)")
    args = parser.parse_args()
    attempts = args.max_attempts or 2 * args.trials
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ftrobot-kill-") as tmp:
        for i in range(attempts):
            if sum(1 for r in results if not r.get("void")) >= args.trials:
                break
            result = trial((args.keep or Path(tmp)) / f"trial{i}", args.domain)
            results.append(result)
            text = (f"{result['kill_to_damping_ms']:6.1f} ms to DAMPING (rtf {result['real_time_factor']:.2f})"
                    if result["ok"] else f"{'VOID' if result.get('void') else 'FAILED'}: {result.get('error')}")
            print(f"attempt {i + 1:2d}: {text}", flush=True)
    killed = [r for r in results if not r.get("void")]
    delays = [r["kill_to_damping_ms"] for r in killed if r["ok"]]
    within = sum(1 for d in delays if d <= 100.0)
    void = [r for r in results if r.get("void")]
    if delays:
        print(f"SIGKILL during arm motion -> DAMPING: {within}/{len(killed)} within 100 ms; median "
              f"{statistics.median(delays):.1f} ms, max {max(delays):.1f} ms")
    print(f"{len(void)} of {len(results)} attempts void (no arm motion to kill: the robot was stopped before)"
          + "".join(f"\n  - {r.get('error')}" for r in void))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0 if len(killed) == args.trials and within == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
