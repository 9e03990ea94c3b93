"""Real-time factor of the simulated G1 node with the guard heartbeat and a 500 Hz command stream in the loop.

The sim runs in its own process (as `ftrobot up sim`), this process plays the guard: guard/alive and a
29-joint hw/joint_command, both at 500 Hz, after switching the robot to NORMAL. Two runs:
  * real_time_factor 1.0 (the demo's setting): the achieved RTF, should be 1.0;
  * real_time_factor 100 (unpaced): the sim's capacity with the same load; margin = capacity / 1.0.
Each with the `humanoid_sim` entry point (SingleThreadedExecutor) and with `ftrobot up sim` (the stack
runner's 4-thread MultiThreadedExecutor). Also: lock-step mode without a guard. RTF = sim-time advance / wall-time advance of sim/ground_truth.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid

# Before rclpy starts: this process and the simulator it launches share one private, local domain.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(200 + os.getpid() % 30))

import rclpy
from ftrobot_msgs.msg import SimGroundTruth
from ftrobot_msgs.srv import SetActuationMode
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ftrobot_guard.ros.qos_profiles import COMMANDS

MEASURE_S = float(os.environ.get("SIM_BENCH_SECONDS", "8"))
DISTRO = os.environ.get("FTROBOT_ROS_DISTRO") or os.environ.get("ROS_DISTRO") or "unknown"
# `ftrobot up sim` (process_runner; SingleThreadedExecutor for the sim stack) or the `humanoid_sim` entry point
# (SingleThreadedExecutor); the sim node is the same.
SIM_PROCESS = {
    "up": """
import sys
from ftrobot_guard.ros.stack_runner import run_stack
sys.exit(run_stack("sim", [], sys.argv[1], per_node_overrides={"humanoid_sim": {
    "lockstep": sys.argv[2] == "1", "headless": True, "real_time_factor": float(sys.argv[3])}}))
""",
    "single": """
import sys
from ftrobot_guard.nodes.humanoid_sim_node import main
main(["humanoid_sim", "--ros-args", "-r", "__ns:=" + sys.argv[1], "-p", "lockstep:=" + ("true" if sys.argv[2] == "1" else "false"),
      "-p", "real_time_factor:=" + sys.argv[3]])
""",
}


def start_sim(launcher: str, namespace: str, lockstep: bool, rtf: float) -> subprocess.Popen[bytes]:
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=os.environ["ROS_DOMAIN_ID"])
    return subprocess.Popen(
        [sys.executable, "-c", SIM_PROCESS[launcher], namespace, "1" if lockstep else "0", str(rtf)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def measure(launcher: str, lockstep: bool, rtf: float, with_guard: bool) -> dict[str, float]:
    namespace = f"/bench_{uuid.uuid4().hex[:6]}"
    process = start_sim(launcher, namespace, lockstep, rtf)
    context = Context()
    rclpy.init(context=context)
    node = Node("bench_guard", namespace=namespace, context=context)
    truth: list[tuple[float, float, float, str]] = []
    node.create_subscription(
        SimGroundTruth, "sim/ground_truth",
        lambda m: truth.append((time.monotonic(), m.sim_time, m.real_time_factor, m.actuation_mode_name)), COMMANDS,
    )
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    stop = threading.Event()
    sent = {"alive": 0, "command": 0}

    def guard_loop() -> None:
        alive = node.create_publisher(Header, "guard/alive", COMMANDS)
        command = node.create_publisher(JointTrajectory, "hw/joint_command", COMMANDS)
        names = None
        period = 0.002
        next_t = time.monotonic()
        k = 0
        while not stop.is_set():
            alive.publish(Header(stamp=node.get_clock().now().to_msg()))
            sent["alive"] += 1
            if names is None:
                names = [
                    "left_hip_pitch_joint", "left_hip_roll_joint", "left_hip_yaw_joint", "left_knee_joint",
                    "left_ankle_pitch_joint", "left_ankle_roll_joint", "right_hip_pitch_joint", "right_hip_roll_joint",
                    "right_hip_yaw_joint", "right_knee_joint", "right_ankle_pitch_joint", "right_ankle_roll_joint",
                    "waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint", "left_shoulder_pitch_joint",
                    "left_shoulder_roll_joint", "left_shoulder_yaw_joint", "left_elbow_joint", "left_wrist_roll_joint",
                    "left_wrist_pitch_joint", "left_wrist_yaw_joint", "right_shoulder_pitch_joint",
                    "right_shoulder_roll_joint", "right_shoulder_yaw_joint", "right_elbow_joint", "right_wrist_roll_joint",
                    "right_wrist_pitch_joint", "right_wrist_yaw_joint",
                ]
                stand = [0.0] * 15 + [0.2, 0.2, 0.0, 1.28, 0.0, 0.0, 0.0, 0.2, -0.2, 0.0, 1.28, 0.0, 0.0, 0.0]
            positions = list(stand)
            positions[18] = 1.28 + 0.2 * math.sin(2 * math.pi * 0.5 * k * period)
            msg = JointTrajectory(joint_names=names)
            msg.points = [JointTrajectoryPoint(positions=positions)]
            command.publish(msg)
            sent["command"] += 1
            k += 1
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.1:
                next_t = time.monotonic()

    guard = threading.Thread(target=guard_loop, daemon=True)
    try:
        deadline = time.monotonic() + 30.0
        while not truth and time.monotonic() < deadline:
            time.sleep(0.05)
        if not truth:
            raise RuntimeError("sim did not start: " + process.stderr.read1(2000).decode(errors="replace") if process.stderr else "")
        if with_guard:
            guard.start()
            client = node.create_client(SetActuationMode, "hw/set_actuation_mode")
            client.wait_for_service(timeout_sec=10.0)
            time.sleep(0.3)
            response = client.call(SetActuationMode.Request(mode=0, reason="bench"), timeout_sec=10.0)
            if response is None or not response.success:
                raise RuntimeError(f"NORMAL refused: {response.message if response else 'no answer'}")
        time.sleep(1.0)  # settle
        start = len(truth)
        alive0, command0 = sent["alive"], sent["command"]
        time.sleep(MEASURE_S)
        window = truth[start:]
        wall = window[-1][0] - window[0][0]
        sim = window[-1][1] - window[0][1]
        return {
            "rtf": sim / wall,
            "mode_at_end": window[-1][3],
            "alive_hz": (sent["alive"] - alive0) / MEASURE_S,
            "command_hz": (sent["command"] - command0) / MEASURE_S,
            "samples": len(window),
        }
    finally:
        stop.set()
        if guard.is_alive():
            guard.join(timeout=5.0)
        executor.shutdown(timeout_sec=5.0)
        spin.join(timeout=5.0)
        node.destroy_node()
        rclpy.shutdown(context=context)
        process.send_signal(2)
        try:
            process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    runs = {
        "rtf_realtime_single_executor": measure("single", lockstep=False, rtf=1.0, with_guard=True),
        "rtf_capacity_single_executor": measure("single", lockstep=False, rtf=100.0, with_guard=True),
        "rtf_realtime_ftrobot_up": measure("up", lockstep=False, rtf=1.0, with_guard=True),
        "rtf_capacity_ftrobot_up": measure("up", lockstep=False, rtf=100.0, with_guard=True),
        "rtf_lockstep_no_guard": measure("single", lockstep=True, rtf=1.0, with_guard=False),
    }
    for name, run in runs.items():
        print(f"{name}: RTF {run['rtf']:.3f}, mode {run['mode_at_end']}, guard/alive {run['alive_hz']:.0f} Hz, "
              f"joint_command {run['command_hz']:.0f} Hz, {run['samples']} ground-truth samples")
    for launcher in ("single_executor", "ftrobot_up"):
        margin = runs[f"rtf_capacity_{launcher}"]["rtf"] / 1.0
        print(f"{launcher}: margin over real time with heartbeat + 500 Hz commands: {margin:.2f}x ({os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.2f})")
    for name, run in runs.items():
        print(json.dumps({"bench": "sim_realtime", "figure": name, "value": round(run["rtf"], 3), "unit": "x",
                          "n": run["samples"], "distro": DISTRO}))
    print(json.dumps({"bench": "sim_realtime", "figure": "command_stream_hz", "value": round(runs["rtf_realtime_single_executor"]["command_hz"], 1),
                      "unit": "Hz", "n": int(MEASURE_S), "distro": DISTRO}))


if __name__ == "__main__":
    main()
