"""CPU of the recorder node at 500 Hz joint-state input (issue 4; target <= 10 % of one core).

The real RecorderNode runs in its own process (real DDS on loopback, raw subscriptions, writer
thread with the default 100 ms fsync); this process publishes 30-joint JointState messages at
500 Hz plus a 1 Hz event topic. The recorder's CPU time is read from /proc over the measurement
window, and compared with the same node idle (no input) in the same run.

Usage: python bench/blackbox_recorder_cpu.py [--seconds 20] [--rate 500]
Prints human-readable lines, then one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 50))
DISTRO = os.environ.get("FTROBOT_ROS_DISTRO", "jazzy")
TICKS = os.sysconf("SC_CLK_TCK")

CHILD = """
import sys
from ftrobot_guard.nodes.recorder_node import main
main(sys.argv[1:])
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _params(directory: Path) -> Path:
    from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

    from ftrobot_guard.keys import write_private_key, write_public_key

    signing = write_private_key(directory / "robot.key", ed25519.Ed25519PrivateKey.generate())
    auditor = write_public_key(directory / "auditor.pub.pem", x25519.X25519PrivateKey.generate().public_key())
    path = directory / "recorder.yaml"
    path.write_text(json.dumps({"/**/recorder": {"ros__parameters": {
        "log_directory": str(directory / "log"), "identity_number": "440304-RB-2026-000123-8",
        "signing_key_file": str(signing), "auditor_public_key_files": [str(auditor)],
        "topics": ["joint_states|sensor_msgs/msg/JointState|state|1.0|sensor", "events|std_msgs/msg/String|event"],
        "guardian_topic": "", "guardian_on_duty": "G-440304-0007"}}}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args()

    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    with tempfile.TemporaryDirectory() as tmp:
        params = _params(Path(tmp))
        child = subprocess.Popen([sys.executable, "-c", CHILD, "--ros-args", "--params-file", str(params)],
                                 env=dict(os.environ), stderr=subprocess.PIPE, text=True)
        rclpy.init()
        node = rclpy.create_node("bench_source")
        joints = node.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
        events = node.create_publisher(String, "events", 10)
        deadline = time.monotonic() + 20
        while joints.get_subscription_count() == 0 or events.get_subscription_count() == 0:
            rclpy.spin_once(node, timeout_sec=0.05)
            if time.monotonic() > deadline or child.poll() is not None:
                raise SystemExit(f"recorder did not start: {child.stderr.read() if child.stderr else ''}")
        time.sleep(2.0)  # settle

        idle_window = min(5.0, args.seconds / 2)
        start_cpu, start = _cpu_seconds(child.pid), time.monotonic()
        time.sleep(idle_window)
        idle = (_cpu_seconds(child.pid) - start_cpu) / (time.monotonic() - start)

        names = [f"joint_{i:02d}" for i in range(30)]
        period = 1.0 / args.rate
        sent = 0
        start_cpu, start = _cpu_seconds(child.pid), time.monotonic()
        next_t = start
        while time.monotonic() - start < args.seconds:
            t = time.monotonic() - start
            msg = JointState(name=names, position=[math.sin(t + i) for i in range(30)],
                             velocity=[math.cos(t + i) for i in range(30)], effort=[5.0] * 30)
            joints.publish(msg)
            sent += 1
            if sent % int(args.rate) == 0:
                events.publish(String(data=f"event {sent}"))
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        elapsed = time.monotonic() - start
        busy = (_cpu_seconds(child.pid) - start_cpu) / elapsed
        node.destroy_node()
        rclpy.shutdown()
        child.send_signal(2)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    rate = sent / elapsed
    print(f"recorder idle: {idle:.1%} of a core")
    print(f"recorder at {rate:.0f} Hz joint states (30 joints) + 1 Hz events: {busy:.1%} of a core"
          f" over {elapsed:.1f} s ({sent} messages)")
    for name, value, unit in (("cpu_percent_500hz", busy * 100, "%"), ("cpu_percent_idle", idle * 100, "%"),
                              ("input_rate", rate, "Hz")):
        print(json.dumps({"bench": "blackbox_recorder_cpu", "figure": name, "value": round(value, 2), "unit": unit,
                          "n": sent, "distro": DISTRO}))


if __name__ == "__main__":
    main()
