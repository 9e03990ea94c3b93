"""CPU of the recorder node at 500 Hz joint-state input (issue 4; target <= 10 % of one core).

The real RecorderNode runs in its own process (real DDS on loopback, raw subscriptions taken in 20 ms
batches (ros/batched_intake.py), writer thread with the default 100 ms fsync); this process publishes
30-joint JointState messages at 500 Hz plus a 1 Hz event topic. The recorder's CPU time is read from
/proc over the measurement window, and compared with the same node idle (no input) and with a
do-nothing rclpy node with the same subscriptions and executor in the same run.
(rclpy.experimental.EventsExecutor of the Jazzy wheels spins a core at 100 % even when idle here, so
it is not used.)

Also timed: one retention status pass (every segment header read, the directory walked) over a log
of ``--scan-segments`` segments: the reason it runs on the recorder's retention thread, not on the
executor that drains messages every 20 ms.

Usage: python bench/blackbox_recorder_cpu.py [--seconds 20] [--rate 500] [--scan-segments 200]
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

# Baseline: the least an rclpy node can do with the same input (a raw subscription that only counts).
BASELINE = """
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("recorder")
count = [0]
node.create_subscription(JointState, "joint_states", lambda m: count.__setitem__(0, count[0] + 1),
                         qos_profile_sensor_data, raw=True)
node.create_subscription(String, "events", lambda m: None, 10, raw=True)
executor = {executor}
executor.add_node(node)
try:
    executor.spin()
except KeyboardInterrupt:
    pass
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _params(directory: Path) -> Path:
    from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

    from ftrobot_guard.trust.keys import write_private_key, write_public_key

    signing = write_private_key(directory / "robot.key", ed25519.Ed25519PrivateKey.generate())
    auditor = write_public_key(directory / "auditor.pub.pem", x25519.X25519PrivateKey.generate().public_key())
    path = directory / "recorder.yaml"
    path.write_text(json.dumps({"/**/recorder": {"ros__parameters": {
        "log_directory": str(directory / "log"), "identity_number": "440304-RB-2026-000123-8",
        "signing_key_file": str(signing), "auditor_public_key_files": [str(auditor)],
        "topics": ["joint_states|sensor_msgs/msg/JointState|state|1.0|sensor", "events|std_msgs/msg/String|event"],
        "guardian_topic": "", "guardian_on_duty": "G-440304-0007"}}}))
    return path


def measure(code: str, extra_args: list[str], seconds: float, rate: float) -> tuple[float, float, int, float, int]:
    """(idle CPU fraction, loaded CPU fraction, messages sent, elapsed, messages the recorder reports received)."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    child = subprocess.Popen([sys.executable, "-c", code, *extra_args], env=dict(os.environ),
                             stderr=subprocess.PIPE, text=True)
    rclpy.init()
    node = rclpy.create_node("bench_source")
    joints = node.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
    events = node.create_publisher(String, "events", 10)
    reported = [-1]

    def on_diagnostics(array: DiagnosticArray) -> None:
        for status in array.status:
            for value in status.values:
                if value.key == "messages_received":
                    reported[0] = int(value.value)

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    try:
        deadline = time.monotonic() + 20
        while joints.get_subscription_count() == 0 or events.get_subscription_count() == 0:
            rclpy.spin_once(node, timeout_sec=0.05)
            if time.monotonic() > deadline or child.poll() is not None:
                raise SystemExit(f"child did not start: {child.stderr.read() if child.stderr else ''}")
        time.sleep(2.0)  # settle
        idle_window = min(5.0, seconds / 2)
        start_cpu, start = _cpu_seconds(child.pid), time.monotonic()
        time.sleep(idle_window)
        idle = (_cpu_seconds(child.pid) - start_cpu) / (time.monotonic() - start)
        names = [f"joint_{i:02d}" for i in range(30)]
        period = 1.0 / rate
        sent = 0
        start_cpu, start = _cpu_seconds(child.pid), time.monotonic()
        next_t = start
        while time.monotonic() - start < seconds:
            t = time.monotonic() - start
            joints.publish(JointState(name=names, position=[math.sin(t + i) for i in range(30)],
                                      velocity=[math.cos(t + i) for i in range(30)], effort=[5.0] * 30))
            sent += 1
            if sent % int(rate) == 0:
                events.publish(String(data=f"event {sent}"))
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        elapsed = time.monotonic() - start
        busy = (_cpu_seconds(child.pid) - start_cpu) / elapsed
        settle = time.monotonic() + 2.5  # the recorder reports on /diagnostics at 1 Hz
        while time.monotonic() < settle:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.shutdown()
        child.send_signal(2)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return idle, busy, sent, elapsed, reported[0]


def retention_scan_ms(segments: int) -> tuple[float, int]:
    """(median ms of one retention status pass, segments) over a log of about ``segments`` segments."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

    from ftrobot_guard.blackbox.log_writer import LogWriter, WriterKeys, WriterPolicy
    from ftrobot_guard.blackbox.retention import RetentionPolicy, retention_status

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "log"
        keys = WriterKeys("440304-RB-2026-000123-8", ed25519.Ed25519PrivateKey.generate(),
                          (x25519.X25519PrivateKey.generate().public_key(),))
        writer = LogWriter(directory, keys, WriterPolicy(segment_max_bytes=4096, block_max_bytes=4096))
        writer.open()
        while len(list(directory.glob("*.ftbb"))) < segments:
            for _ in range(5):
                writer.append_message("/joint_states", "sensor_msgs/msg/JointState", os.urandom(400))
            writer.flush()
        writer.close()
        count = len(list(directory.glob("*.ftbb")))
        times = []
        for _ in range(7):
            start = time.perf_counter()
            retention_status(directory, RetentionPolicy(), time.time_ns())
            times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2], count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--scan-segments", type=int, default=200, help="log size for the retention pass (0: skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        params = _params(Path(tmp))
        idle, busy, sent, elapsed, received = measure(CHILD, ["--ros-args", "--params-file", str(params)], args.seconds,
                                            args.rate)
    _i, base, _s, _e, _r = measure(BASELINE.replace("{executor}", "SingleThreadedExecutor()"), [], args.seconds,
                               args.rate)
    rate = sent / elapsed
    print(f"recorder idle: {idle:.1%} of a core")
    print(f"recorder at {rate:.0f} Hz joint states (30 joints) + 1 Hz events: {busy:.1%} of a core"
          f" over {elapsed:.1f} s ({sent} messages)")
    joint_received = received - int(sent // int(args.rate)) if received >= 0 else -1  # minus the 1 Hz events
    print(f"recorder took {received} messages ({joint_received} of {sent} joint states, the rest events);"
          " it takes recorded topics in 20 ms batches instead of one executor dispatch per message")
    print(f"baseline (rclpy node with the same raw subscriptions, doing nothing, one executor dispatch per message):"
          f" {base:.1%} of a core; the recorder uses {busy / base if base else float('nan'):.2f}x that")
    for name, value, unit in (("cpu_percent_500hz", busy * 100, "%"), ("cpu_percent_idle", idle * 100, "%"),
                              ("cpu_percent_baseline_rclpy_500hz", base * 100, "%"),
                              ("cpu_ratio_vs_baseline", busy / base if base else float("nan"), "x"),
                              ("input_rate", rate, "Hz"),
                              ("joint_states_received_fraction", joint_received / sent if sent else 0.0, "1")):
        print(json.dumps({"bench": "blackbox_recorder_cpu", "figure": name, "value": round(value, 2), "unit": unit,
                          "n": sent, "distro": DISTRO}))
    if args.scan_segments > 0:
        scan_ms, count = retention_scan_ms(args.scan_segments)
        print(f"one retention status pass over {count} segments: {scan_ms:.1f} ms ({scan_ms / count:.2f} ms per"
              " segment); it runs on the retention thread every 10 s, not on the 20 ms drain path")
        for name, value, unit in (("retention_pass_ms", scan_ms, "ms"), ("retention_pass_ms_per_segment",
                                                                          scan_ms / count, "ms")):
            print(json.dumps({"bench": "blackbox_recorder_cpu", "figure": name, "value": round(value, 3),
                              "unit": unit, "n": count, "distro": DISTRO}))


if __name__ == "__main__":
    main()
