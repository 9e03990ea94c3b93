"""CPU of the heartbeat process while its watched inputs run at 500 Hz (joint_states and imu).

Starts ``ftrobot up heartbeat`` (1 Hz heartbeat, watching both topics) in its own process and a
publisher of both topics at 500 Hz in this one, both on a private ROS domain on this machine; after a
warm-up, reads the heartbeat process's CPU time (user + system, /proc) over a measuring window and
prints it as a share of one core. ``--heartbeat-pythonpath`` runs the heartbeat from another source
tree (e.g. ``git archive`` of an earlier commit) to compare before and after a change.

    python bench/heartbeat_watch_cpu.py [--seconds 10] [--rate 500] [--heartbeat-pythonpath DIR]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--heartbeat-pythonpath", default="", help="PYTHONPATH of the heartbeat process")
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node
    from sensor_msgs.msg import Imu, JointState

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from credentials import make_fleet
    from ftrobot_guard.ros.qos_profiles import SENSOR_DATA

    with tempfile.TemporaryDirectory() as tmp:
        fleet = make_fleet(Path(tmp))
        params = Path(tmp) / "robot.yaml"
        params.write_text(
            "/**/heartbeat:\n  ros__parameters:\n"
            f'    identity_number: "{fleet.robot.identity_number}"\n'
            f'    robot_name: "{fleet.robot.robot_name}"\n'
            f'    department: "{fleet.robot.department}"\n'
            f'    private_key_file: "{fleet.robot.private_key}"\n'
            f'    certificate_file: "{fleet.robot.certificate}"\n'
            f'    department_ca_files: ["{fleet.department.ca_certificate}"]\n'
            "    rate_hz: 1.0\n"
            '    watched_topics: ["joint_states:sensor_msgs/msg/JointState", "imu:sensor_msgs/msg/Imu"]\n'
            '    guardian_on_duty: "G-440304-0007"\n',
            encoding="utf-8",
        )
        env = dict(os.environ)
        if args.heartbeat_pythonpath:
            env["PYTHONPATH"] = args.heartbeat_pythonpath
        heartbeat = subprocess.Popen(
            [sys.executable, "-m", "ftrobot_guard.cli.main", "up", "heartbeat", "--params", str(params)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )
        assert heartbeat.stdout is not None
        heartbeat.stdout.readline()  # ready
        context = Context()
        rclpy.init(context=context)
        node = Node("watched_source", context=context)
        joints = node.create_publisher(JointState, "joint_states", SENSOR_DATA)
        imu = node.create_publisher(Imu, "imu", SENSOR_DATA)
        names = [f"joint_{i}" for i in range(29)]
        stop = threading.Event()
        sent = [0]

        def publish() -> None:
            period = 1.0 / args.rate
            next_t = time.monotonic()
            while not stop.is_set():
                joints.publish(JointState(name=names, position=[0.0] * 29, velocity=[0.0] * 29, effort=[0.0] * 29))
                imu.publish(Imu())
                sent[0] += 2
                next_t += period
                time.sleep(max(0.0, next_t - time.monotonic()))

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        try:
            time.sleep(args.warmup)
            cpu_0, wall_0, sent_0 = _cpu_seconds(heartbeat.pid), time.monotonic(), sent[0]
            time.sleep(args.seconds)
            cpu_1, wall_1, sent_1 = _cpu_seconds(heartbeat.pid), time.monotonic(), sent[0]
        finally:
            stop.set()
            publisher.join(timeout=5.0)
            heartbeat.send_signal(signal.SIGINT)
            heartbeat.wait(timeout=30)
            node.destroy_node()
            rclpy.shutdown(context=context)
    rate = (sent_1 - sent_0) / (wall_1 - wall_0)
    share = (cpu_1 - cpu_0) / (wall_1 - wall_0)
    print(f"watched messages offered: {rate:.0f}/s (2 topics at {args.rate:.0f} Hz)")
    print(f"heartbeat process CPU: {100.0 * share:.1f} % of one core over {wall_1 - wall_0:.1f} s")


if __name__ == "__main__":
    main()
