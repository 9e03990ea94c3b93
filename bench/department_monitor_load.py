"""Department monitor load and heartbeat-loss detection delay (issue 2's figures).

1. Load: one generator process publishes N robots' signed heartbeats at 1 Hz (each robot with its
   own key and department certificate) on /fleet/heartbeat; the monitor runs in its own process
   (the real DepartmentMonitorNode, real DDS on loopback) and reports how many robots it verified and
   the CPU it used over the measurement window (target: 1000 robots under 25 % of one core).
2. Loss delay: a real heartbeat node at 1 Hz is stopped; time from its last heartbeat to the
   monitor's SILENT alert (expected: silent_periods x period, plus up to one watchdog tick).

Usage: python bench/department_monitor_load.py [--robots 1000] [--seconds 20] [--trials 5]
Prints human-readable lines, then one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
DISTRO = os.environ.get("FTROBOT_ROS_DISTRO", "jazzy")


def _make_fleet(directory: Path, robots: int) -> None:
    from ftrobot_guard.dev_credentials import make_department, make_robot
    from ftrobot_guard.identity import make_identity_number

    department = make_department(directory / "department")
    for serial in range(1, robots + 1):
        make_robot(directory / f"r{serial}", department, make_identity_number("440304", 2026, serial), f"robot-{serial}")


def _generator(directory: Path, robots: int, seconds: float) -> None:
    import uuid

    import rclpy
    from cryptography.x509.oid import NameOID
    from ftrobot_guard.certificates import certificate_der, load_certificate
    from ftrobot_guard.keys import load_private_key
    from ftrobot_guard.nodes.qos_profiles import heartbeat_publisher
    from ftrobot_guard.signed_fields import HEARTBEAT_DOMAIN, message_fields, sign_fields
    from ftrobot_msgs.msg import Heartbeat

    rclpy.init()
    node = rclpy.create_node("heartbeat_generator")
    publisher = node.create_publisher(Heartbeat, "/fleet/heartbeat", heartbeat_publisher(1.0))
    fleet = []
    for serial in range(1, robots + 1):
        folder = directory / f"r{serial}"
        cert = load_certificate(folder / "robot.pem")
        number = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
        fleet.append((load_private_key(folder / "robot.key"), certificate_der(cert), str(number), f"robot-{serial}"))
    boot = uuid.uuid4().hex
    start = time.monotonic()
    sequence = 0
    print("generator ready", flush=True)
    while time.monotonic() - start < seconds:
        tick = time.monotonic()
        sequence += 1
        for index, (key, der, number, name) in enumerate(fleet):
            # Real robots are not synchronised: spread the fleet's heartbeats over the period.
            delay = tick + index / len(fleet) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            msg = Heartbeat(format_version=1, identity_number=number, robot_name=name,
                            department="Futian District Government Services Center", boot_id=boot,
                            sequence=sequence, uptime=tick - start, safety_mode=1, safety_mode_name="NORMAL",
                            software_digest="0" * 64, config_digest="0" * 64, guardian_on_duty="G-1", certificate=der)
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.signature = sign_fields(key, HEARTBEAT_DOMAIN, message_fields(msg))
            publisher.publish(msg)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    node.destroy_node()
    rclpy.shutdown()


def _monitor(directory: Path, seconds: float, warmup: float) -> None:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from ftrobot_guard.nodes.department_monitor_node import DepartmentMonitorNode

    context = Context()
    rclpy.init(context=context)
    node = DepartmentMonitorNode(context=context, parameter_overrides=[
        Parameter("trusted_ca_files", value=[str(directory / "department" / "ca.pem")]),
        Parameter("heartbeat_topics", value=["/fleet/heartbeat"]),
    ])
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    print("monitor ready", flush=True)
    end_warmup = time.monotonic() + warmup
    while time.monotonic() < end_warmup:
        executor.spin_once(timeout_sec=0.05)
    cpu0, wall0, count0 = time.process_time(), time.monotonic(), node.heartbeats_received
    while time.monotonic() - wall0 < seconds:
        executor.spin_once(timeout_sec=0.05)
    cpu, wall, count = time.process_time() - cpu0, time.monotonic() - wall0, node.heartbeats_received - count0
    rows = node.rows()
    verified = sum(1 for r in rows if r.signature_state.value == "verified" and (r.last_seen_age_s or 99) < 3.0)
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "heartbeats": count, "verified": verified, "rows": len(rows)}),
          flush=True)
    node.destroy_node()
    rclpy.shutdown(context=context)


def _load(robots: int, seconds: float) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        t0 = time.monotonic()
        _make_fleet(directory, robots)
        print(f"made {robots} robot identities in {time.monotonic() - t0:.1f} s")
        me = [sys.executable, __file__, "--dir", str(directory), "--robots", str(robots)]
        monitor = subprocess.Popen(me + ["--role", "monitor", "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
        assert monitor.stdout is not None
        monitor.stdout.readline()
        generator = subprocess.Popen(me + ["--role", "generator", "--seconds", str(seconds + 12)], stdout=subprocess.PIPE,
                                     text=True)
        result = json.loads(monitor.stdout.readline())
        monitor.wait()
        generator.wait()
    share = 100.0 * result["cpu_s"] / result["wall_s"]
    rate = result["heartbeats"] / result["wall_s"]
    print(f"monitor: {result['verified']}/{robots} robots verified and fresh, {rate:.0f} heartbeats/s, "
          f"{share:.1f} % of one core ({1e6 * result['cpu_s'] / max(1, result['heartbeats']):.0f} us per heartbeat)")
    return [
        {"bench": "department_monitor_load", "figure": "cpu_percent_one_core", "value": round(share, 2), "unit": "%",
         "n": robots, "distro": DISTRO},
        {"bench": "department_monitor_load", "figure": "robots_verified", "value": result["verified"], "unit": "robots",
         "n": robots, "distro": DISTRO},
        {"bench": "department_monitor_load", "figure": "heartbeats_per_s", "value": round(rate, 1), "unit": "1/s",
         "n": robots, "distro": DISTRO},
    ]


def _loss_delay(trials: int) -> list[dict[str, object]]:
    import threading

    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from ftrobot_guard.dev_credentials import make_department, make_robot
    from ftrobot_guard.fleet_monitor import AlertKind
    from ftrobot_guard.identity import make_identity_number
    from ftrobot_guard.nodes.department_monitor_node import DepartmentMonitorNode
    from ftrobot_guard.nodes.heartbeat_node import HeartbeatNode
    from ftrobot_msgs.msg import Heartbeat

    delays = []
    with tempfile.TemporaryDirectory() as tmp:
        department = make_department(Path(tmp) / "d")
        robot = make_robot(Path(tmp) / "r", department, make_identity_number("440304", 2026, 1), "robot-1")
        context = Context()
        rclpy.init(context=context)
        executor = MultiThreadedExecutor(num_threads=3, context=context)
        monitor = DepartmentMonitorNode(context=context, parameter_overrides=[
            Parameter("trusted_ca_files", value=[str(department.ca_certificate)])])
        executor.add_node(monitor)
        silent_at: list[float] = []
        last_beat: list[float] = []
        monitor.add_alert_listener(
            lambda a: silent_at.append(time.monotonic()) if a.kind == AlertKind.SILENT and a.raised else None)
        probe = rclpy.create_node("probe", context=context)
        probe.create_subscription(Heartbeat, "/bench/heartbeat", lambda _m: last_beat.append(time.monotonic()), 10)
        executor.add_node(probe)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        for _ in range(trials):
            node = HeartbeatNode(context=context, namespace="/bench", parameter_overrides=[
                Parameter("identity_number", value=robot.identity_number), Parameter("robot_name", value="robot-1"),
                Parameter("department", value=robot.department), Parameter("private_key_file", value=str(robot.private_key)),
                Parameter("certificate_file", value=str(robot.certificate)),
                Parameter("department_ca_files", value=[str(department.ca_certificate)]),
                Parameter("guardian_on_duty", value="G-1")])
            executor.add_node(node)
            silent_at.clear()
            time.sleep(3.5 + (len(delays) % 3) * 0.3)  # stop at a varying phase of the period
            executor.remove_node(node)
            node.destroy_node()
            stopped = time.monotonic()
            while not silent_at and time.monotonic() - stopped < 10:
                time.sleep(0.01)
            if silent_at:
                delays.append(silent_at[0] - last_beat[-1])
                print(f"  SILENT {delays[-1]:.3f} s after the last heartbeat")
            time.sleep(1.5)
        executor.shutdown()
        rclpy.shutdown(context=context)
    delays.sort()
    median = delays[len(delays) // 2]
    print(f"heartbeat loss detected {median:.3f} s (median), {delays[-1]:.3f} s (max) after the last heartbeat "
          f"(window 3 x 1.0 s, watchdog 4 Hz)")
    return [
        {"bench": "heartbeat_loss_detection", "figure": "median_s", "value": round(median, 3), "unit": "s",
         "n": len(delays), "distro": DISTRO},
        {"bench": "heartbeat_loss_detection", "figure": "max_s", "value": round(delays[-1], 3), "unit": "s",
         "n": len(delays), "distro": DISTRO},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--role", choices=["bench", "monitor", "generator"], default="bench")
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    if args.role == "generator":
        _generator(args.dir, args.robots, args.seconds)
        return
    if args.role == "monitor":
        _monitor(args.dir, args.seconds, warmup=8.0)
        return
    figures = _load(args.robots, args.seconds) + _loss_delay(args.trials)
    for figure in figures:
        print(json.dumps(figure))


if __name__ == "__main__":
    main()
