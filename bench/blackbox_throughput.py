"""Black-box figures (issue 4): sealing throughput on one core, and bytes per day for the default tiers.

1. Sealing: ~300-byte entries (a) one entry per record (AES-GCM + zlib + chain + CRC each), in memory;
   (b) batched as the recorder does (LogWriter: append + flush every 100 ms worth of entries, written to
   a file, no fsync) and (c) with an fsync per flush. Target: >= 20k records/s on one core.
2. Bytes/day: the default config/recorder.yaml tiers fed with realistic CDR messages (30-joint
   JointState at 500 Hz, Imu at 200 Hz, Odometry at 50 Hz, joint commands at 100 Hz, heartbeat and
   safety state at 1 Hz, two incidents a day) through the real recording policy and writer under a
   simulated clock; scaled to one day, and days per GB.

Usage: python bench/blackbox_throughput.py [--seconds 3] [--sim-minutes 20]
Prints human-readable lines, then one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import time
from pathlib import Path

DISTRO = os.environ.get("FTROBOT_ROS_DISTRO", "jazzy")
FIGURES: list[dict[str, object]] = []


def figure(name: str, value: float, unit: str, n: int, bench: str = "blackbox_throughput") -> None:
    FIGURES.append({"bench": bench, "figure": name, "value": round(value, 3), "unit": unit, "n": n, "distro": DISTRO})


def _keys():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

    from ftrobot_guard.blackbox.log_writer import WriterKeys

    return WriterKeys("440304-RB-2026-000123-8", ed25519.Ed25519PrivateKey.generate(),
                      (x25519.X25519PrivateKey.generate().public_key(),))


def _entry_bytes(i: int) -> bytes:
    from ftrobot_guard.blackbox.record_format import Entry, Tier, encode_entry

    payload = os.urandom(100) + bytes(150)
    return encode_entry(Entry(time.time_ns(), "/joint_states", "sensor_msgs/msg/JointState", payload, "G-0001",
                              Tier.LONG_TERM))


def bench_sealing(seconds: float) -> None:
    from ftrobot_guard.blackbox.key_wrap import new_data_key
    from ftrobot_guard.blackbox.log_writer import LogWriter, WriterPolicy
    from ftrobot_guard.blackbox.record_format import Entry, SegmentHeader, Tier
    from ftrobot_guard.blackbox.segment_writer import SegmentWriter

    keys = _keys()
    entries = [_entry_bytes(i) for i in range(2000)]
    size = len(entries[0])
    print(f"entry size: {size} bytes (encoded, before compression)")
    with tempfile.TemporaryDirectory() as tmp:
        header = SegmentHeader(keys.robot_id, keys.signing_key.public_key().public_bytes_raw().hex(), "00" * 16,
                               "11" * 16, 0, 1, "", "00" * 32, time.time_ns(), ())
        segment = SegmentWriter(Path(tmp), header, keys.signing_key, new_data_key())
        n = 0
        start = time.process_time()
        while time.process_time() - start < seconds:
            blocks = [(entries[(n + j) % 2000], 0) for j in range(1000)]
            batch = segment.seal(blocks, None)
            segment.head, segment.next_sequence = batch.head, batch.last_sequence + 1
            n += 1000
        cpu = time.process_time() - start
        segment.release()
    rate = n / cpu
    print(f"(a) one entry per record, in memory: {rate:,.0f} records/s per core ({n} records)")
    figure("seal_records_per_s_unbatched", rate, "records/s", n)

    for label, sync in (("(b) batched, written, no fsync", False), ("(c) batched, written, fsync per flush", True)):
        with tempfile.TemporaryDirectory() as tmp:
            writer = LogWriter(Path(tmp) / "log", keys, WriterPolicy(segment_max_bytes=256 * 2**20))
            writer.open()
            per_flush = 2000  # 100 ms worth at 20k/s
            n = 0
            payloads = [os.urandom(100) + bytes(150) for _ in range(4096)]
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            while time.perf_counter() - start_wall < seconds:
                for j in range(per_flush):
                    writer.append(Entry(time.time_ns(), "/joint_states", "sensor_msgs/msg/JointState",
                                        payloads[(n + j) % 4096], "G-0001", Tier.LONG_TERM))
                writer.flush(sync=sync)
                n += per_flush
            cpu = time.process_time() - start_cpu
            wall = time.perf_counter() - start_wall
            written = writer.stats.bytes_written
            writer.close()
        print(f"{label}: {n / cpu:,.0f} entries/s per core CPU, {n / wall:,.0f} entries/s wall;"
              f" {written / n:.0f} bytes/entry on disk")
        figure("append_entries_per_s_batched" + ("_fsync" if sync else ""), n / cpu, "entries/s", n)


def _cdr_messages(rng: random.Random) -> dict[str, object]:
    """Serialized messages of realistic size and entropy (falls back to sized random bytes)."""
    try:
        from geometry_msgs.msg import Twist  # noqa: F401
        from nav_msgs.msg import Odometry
        from rclpy.serialization import serialize_message
        from sensor_msgs.msg import Imu, JointState
    except ImportError:
        return {}
    joints = [f"joint_{i:02d}" for i in range(30)]

    def joint_state(t: float) -> bytes:
        msg = JointState(name=joints, position=[math.sin(t + i) + rng.gauss(0, 1e-3) for i in range(30)],
                         velocity=[math.cos(t + i) + rng.gauss(0, 1e-3) for i in range(30)],
                         effort=[rng.gauss(5, 0.5) for _ in range(30)])
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
        msg.header.frame_id = "base_link"
        return serialize_message(msg)

    def imu(t: float) -> bytes:
        msg = Imu()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
        msg.linear_acceleration.z = 9.81 + rng.gauss(0, 0.05)
        msg.angular_velocity.x = rng.gauss(0, 0.01)
        msg.orientation.w = 1.0
        return serialize_message(msg)

    def odom(t: float) -> bytes:
        msg = Odometry()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
        msg.pose.pose.position.x = t * 0.3 + rng.gauss(0, 1e-3)
        msg.twist.twist.linear.x = 0.3 + rng.gauss(0, 1e-3)
        return serialize_message(msg)

    def command(t: float) -> bytes:
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        point = JointTrajectoryPoint(positions=[math.sin(t + i) for i in range(30)])
        return serialize_message(JointTrajectory(joint_names=joints, points=[point]))

    return {"joint_states": joint_state, "imu": imu, "odom": odom, "command": command}


def bench_bytes_per_day(sim_minutes: float) -> None:
    import yaml

    from ftrobot_guard.blackbox.log_writer import LogWriter, WriterPolicy
    from ftrobot_guard.blackbox.recording_policy import TwoTierRecorder, parse_topic_specs

    rng = random.Random(7)
    makers = _cdr_messages(rng)
    if not makers:
        print("rclpy/messages not importable: bytes/day skipped")
        return
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "recorder.yaml").read_text())
    params = config["/**/recorder"]["ros__parameters"]
    specs = {s.topic: s for s in parse_topic_specs(params["topics"])}
    heartbeat = os.urandom(700) + bytes(500)  # signed heartbeat with a DER certificate: ~1.2 kB, mostly random
    safety = bytes(60)
    twist = bytes(52)
    clock_ns = [1_780_000_000 * 10**9]
    with tempfile.TemporaryDirectory() as tmp:
        policy = WriterPolicy(checkpoint_every_records=params["checkpoint_every_records"],
                              checkpoint_every_s=params["checkpoint_every_s"],
                              segment_max_bytes=int(params["segment_max_mb"] * 2**20))
        writer = LogWriter(Path(tmp) / "log", _keys(), policy, clock=lambda: clock_ns[0])
        writer.open()
        recorder = TwoTierRecorder(list(specs.values()), writer.append, params["ring_seconds"],
                                   int(params["ring_max_mb"] * 2**20), params["post_incident_s"])
        recorder.guardian = "G-440304-0007"
        sim_ns = int(sim_minutes * 60e9)
        tick_ns = 2_000_000  # 500 Hz base tick
        incidents_per_day = 2
        ticks = 0
        cache: dict[str, list[bytes]] = {name: [make(i * 0.002) for i in range(500)] for name, make in makers.items()}
        t0 = clock_ns[0]
        while clock_ns[0] - t0 < sim_ns:
            now = clock_ns[0]
            recorder.on_message(specs["joint_states"], cache["joint_states"][ticks % 500], now)
            if ticks % 5 < 2:
                recorder.on_message(specs["imu"], cache["imu"][ticks % 500], now)  # 200 Hz
            if ticks % 10 == 0:
                recorder.on_message(specs["odom"], cache["odom"][ticks % 500], now)  # 50 Hz
            if ticks % 5 == 0:
                recorder.on_message(specs["guard/in/joint_command"], cache["command"][ticks % 500], now)  # 100 Hz
                recorder.on_message(specs["hw/joint_command"], cache["command"][ticks % 500], now)
            if ticks % 25 == 0:
                recorder.on_message(specs["guard/in/cmd_vel"], twist, now)  # 20 Hz
                recorder.on_message(specs["hw/cmd_vel"], twist, now)
            if ticks % 500 == 0:
                recorder.on_message(specs["heartbeat"], heartbeat, now)
                recorder.on_message(specs["safety_state"], safety, now)
            if ticks % 50 == 0:  # the writer thread's 100 ms flush
                writer.flush(sync=False)
            ticks += 1
            clock_ns[0] += tick_ns
        base_bytes = writer.stats.bytes_written
        # one incident: ring dump + post-incident full rate, measured separately and scaled to 2/day
        before = writer.stats.bytes_written
        recorder.on_message(specs["incident"], os.urandom(400), clock_ns[0])
        end_post = clock_ns[0] + int(params["post_incident_s"] * 1e9)
        while clock_ns[0] < end_post:
            now = clock_ns[0]
            recorder.on_message(specs["joint_states"], cache["joint_states"][ticks % 500], now)
            if ticks % 5 < 2:
                recorder.on_message(specs["imu"], cache["imu"][ticks % 500], now)
            if ticks % 10 == 0:
                recorder.on_message(specs["odom"], cache["odom"][ticks % 500], now)
            if ticks % 50 == 0:
                writer.flush(sync=False)
            ticks += 1
            clock_ns[0] += tick_ns
        writer.flush(sync=False)
        incident_bytes = writer.stats.bytes_written - before
        writer.close()
    per_day_base = base_bytes * (86400e9 / sim_ns)
    per_day = per_day_base + incidents_per_day * incident_bytes
    print(f"simulated {sim_minutes:g} min: {base_bytes / 2**20:.1f} MiB long-term; one incident adds"
          f" {incident_bytes / 2**20:.1f} MiB (ring {params['ring_seconds']:g} s + {params['post_incident_s']:g} s)")
    print(f"default tiers: {per_day / 1e6:.0f} MB/day (with {incidents_per_day} incidents/day),"
          f" {1e9 / per_day:.1f} days per GB; 183 days need {183 * per_day / 2**30:.1f} GiB"
          f" (default budget {params['disk_budget_gb']:g} GiB holds {params['disk_budget_gb'] * 2**30 / per_day:.0f} days)")
    figure("bytes_per_day_default_tiers", per_day / 1e6, "MB/day", ticks, "blackbox_storage")
    figure("days_per_gb_default_tiers", 1e9 / per_day, "days/GB", ticks, "blackbox_storage")
    figure("incident_bytes", incident_bytes / 1e6, "MB/incident", 1, "blackbox_storage")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per sealing measurement")
    parser.add_argument("--sim-minutes", type=float, default=20.0, help="simulated minutes for bytes/day")
    args = parser.parse_args()
    bench_sealing(args.seconds)
    bench_bytes_per_day(args.sim_minutes)
    for item in FIGURES:
        print(json.dumps(item))


if __name__ == "__main__":
    main()
