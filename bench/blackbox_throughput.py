"""Black-box figures (issues 4 and 7): sealing rate on one core, and bytes per day at the default tiers,
for the first format version 2 writer (zstd level 3, 32 KiB segment dictionary: "before") and the
current one (payload_codec.ZSTD_LEVEL and ZSTD_DICTIONARY_BYTES: "after"; issue 7 item 11), and with
--with-zlib also the zlib encoding (format version 1). The tuning is writer-side only: both write
format version 2 with the same codecs, and every reader reads both.

1. Sealing: ~300-byte entries (a) one entry per record (encoding + AES-GCM + chain + CRC each), in
   memory; (b) batched as the recorder does (LogWriter: append, flush every 100 ms worth of entries,
   written to a file, no fsync) and (c) with an fsync per flush. Target: >= 20k records/s per core.
2. Bytes/day: a walking Unitree G1 as the recorder sees it, through the real recording policy
   (config/recorder.yaml) and the real writer under a simulated clock. Streams at the G1's rates
   (config/sim.yaml): 29-joint JointState 500 Hz and Imu 500 Hz with float32 values widened to
   float64 (the G1 reports q, dq, tau_est and its IMU as float32: unitree_hg LowState), Odometry
   100 Hz (float64 estimator), joint commands 100 Hz on guard/in and hw/ (float64 positions of all
   29 joints), velocity commands 20 Hz on guard/in and hw/ (float64 vx and yaw rate from a path
   follower), the signed Heartbeat and SafetyState 1 Hz; receive times jittered by 30-400 µs. Sensor
   noise and a gait whose speed and heading change all the time: no stream repeats. The long-term
   tier is simulated for --sim-minutes after --warmup-minutes (default 2.5: the writer's first two
   segments after a start, which have no or a provisional dictionary; a day after a boot is steady
   state, so the warm-up is not scaled to a day; --warmup-minutes 0 counts it as if it lasted all
   day), then one incident (the 60 s ring plus 30 s at full rate); scaled to a day with two
   incidents, segment headers counted at one segment per hour.
   --float64-state makes joint states, IMU and odometry full float64 (like the MuJoCo simulator).
   This "24 h" figure has the G1 walking all day. The "service hours" figure is a robot employee's week:
   it walks only inside its envelope's service hours (config/envelope/g1.yaml: mon-fri 09:00-18:00 and
   sat 09:00-12:00 = 48 h; the gate refuses motion outside them) and stands still (or docked) the other
   120 h with the guard, heartbeat and recorder running: joint states, IMU and odometry at the same rates
   with a standing robot's noise, Heartbeat and SafetyState 1 Hz, no joint and no velocity commands. The
   idle rate is measured the same way (--idle-minutes after the warm-up, segment headers counted) and
   combined with the walking rate: 48 h walking + 120 h idle + 2 incidents per working day (12 a week,
   each the walking ring and window), averaged over the 7 days.
3. Crash bound at an incident: in real time, the worst time from append to fsynced of a live entry
   while an incident's 60 s ring dump is sealed (target: the fsync interval plus a little).

Usage: python bench/blackbox_throughput.py [--seconds 3] [--sim-minutes 20] [--warmup-minutes 2.5]
       [--idle-minutes 20] [--float64-state] [--with-zlib] [--skip-sealing]
Prints human-readable lines, then one JSON object per figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

DISTRO = os.environ.get("FTROBOT_ROS_DISTRO", "jazzy")
FIGURES: list[dict[str, object]] = []
# name -> (payload encoding, zstd tuning (level, dictionary bytes) or None for the module's defaults)
VARIANTS: dict[str, tuple[str, tuple[int, int] | None]] = {
    "zlib": ("zlib", None),  # format version 1 (only with --with-zlib)
    "before": ("zstd", (3, 32 * 1024)),  # format version 2 as first written (issue 7)
    "after": ("zstd", None),  # format version 2, current writer tuning (issue 7 item 11)
}
LABELS = {"zlib": "zlib-1 (v1)", "before": "v2 zstd-3, 32 KiB dict", "after": "v2 current tuning"}
TARGET_GIB_183_DAYS = 20.0
INCIDENTS_PER_DAY = 2
REPO = Path(__file__).resolve().parents[1]

# The G1's 29 actuated joints (MuJoCo Menagerie unitree_g1, as src/ftrobot_guard/sim/g1_model.py loads them)
G1_JOINTS = (
    "left_hip_pitch_joint", "left_hip_roll_joint", "left_hip_yaw_joint", "left_knee_joint", "left_ankle_pitch_joint",
    "left_ankle_roll_joint", "right_hip_pitch_joint", "right_hip_roll_joint", "right_hip_yaw_joint",
    "right_knee_joint", "right_ankle_pitch_joint", "right_ankle_roll_joint", "waist_yaw_joint", "waist_roll_joint",
    "waist_pitch_joint", "left_shoulder_pitch_joint", "left_shoulder_roll_joint", "left_shoulder_yaw_joint",
    "left_elbow_joint", "left_wrist_roll_joint", "left_wrist_pitch_joint", "left_wrist_yaw_joint",
    "right_shoulder_pitch_joint", "right_shoulder_roll_joint", "right_shoulder_yaw_joint", "right_elbow_joint",
    "right_wrist_roll_joint", "right_wrist_pitch_joint", "right_wrist_yaw_joint",
)
G1_EFFORT_LIMIT = np.array([88, 139, 88, 139, 50, 50] * 2 + [88, 50, 50] + [25, 25, 25, 25, 25, 5, 5] * 2, float)


@contextlib.contextmanager
def _tuning(variant: str) -> Iterator[str]:
    """Sets the writer's zstd level and dictionary size for ``variant``; yields its payload encoding."""
    from ftrobot_guard.blackbox import payload_codec

    encoding, tuning = VARIANTS[variant]
    saved = payload_codec.ZSTD_LEVEL, payload_codec.ZSTD_DICTIONARY_BYTES
    if tuning is not None:
        payload_codec.ZSTD_LEVEL, payload_codec.ZSTD_DICTIONARY_BYTES = tuning
    try:
        yield encoding
    finally:
        payload_codec.ZSTD_LEVEL, payload_codec.ZSTD_DICTIONARY_BYTES = saved


def figure(name: str, value: float, unit: str, n: int, bench: str = "blackbox_throughput") -> None:
    FIGURES.append({"bench": bench, "figure": name, "value": round(value, 3), "unit": unit, "n": n, "distro": DISTRO})


if TYPE_CHECKING:
    from ftrobot_guard.blackbox.log_writer import WriterKeys


def _keys() -> WriterKeys:
    from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

    from ftrobot_guard.blackbox.log_writer import WriterKeys

    return WriterKeys("440304-RB-2026-000123-8", ed25519.Ed25519PrivateKey.generate(),
                      (x25519.X25519PrivateKey.generate().public_key(),))


# --------------------------------------------------------------------------- 1. sealing rate


def _sealing_payloads(count: int) -> list[bytes]:
    return [os.urandom(100) + bytes(150) for _ in range(count)]


def bench_sealing(seconds: float, variants: tuple[str, ...]) -> None:
    from ftrobot_guard.blackbox.key_wrap import new_data_key
    from ftrobot_guard.blackbox.log_writer import LogWriter, WriterPolicy
    from ftrobot_guard.blackbox.record_format import Entry, SegmentHeader, Tier, encode_entry
    from ftrobot_guard.blackbox.segment_writer import SegmentWriter

    keys = _keys()
    payloads = _sealing_payloads(4096)
    entries = [encode_entry(Entry(time.time_ns(), "/joint_states", "sensor_msgs/msg/JointState", p, "G-0001",
                                  Tier.LONG_TERM)) for p in payloads[:2000]]
    print(f"entry size: {len(entries[0])} bytes (encoded, before compression)")
    for variant in variants:
        with _tuning(variant) as encoding, tempfile.TemporaryDirectory() as tmp:
            def header(index: int) -> SegmentHeader:
                return SegmentHeader(keys.robot_id, keys.signing_key.public_key().public_bytes_raw().hex(),
                                     "00" * 16, f"{index:032x}", index, 1, "", "00" * 32, time.time_ns(), ())
            # the steady state: a segment whose dictionary was built from the one before (zstd)
            seed = SegmentWriter(Path(tmp), header(1), keys.signing_key, new_data_key(), 1, encoding)
            for first in range(0, 2000, 20):
                seed.seal([(b"".join(entries[first:first + 20]), 0)], None)
            segment = SegmentWriter(Path(tmp), header(2), keys.signing_key, new_data_key(), 1, encoding, seed)
            n = 0
            start = time.process_time()
            while time.process_time() - start < seconds:
                blocks = [(entries[(n + j) % 2000], 0) for j in range(1000)]
                batch = segment.seal(blocks, None)
                segment.head, segment.next_sequence = batch.head, batch.last_sequence + 1
                n += 1000
            cpu = time.process_time() - start
            seed.release()
            segment.release()
        rate = n / cpu
        print(f"[{LABELS[variant]}] (a) one entry per record, in memory: {rate:,.0f} records/s per core ({n} records)")
        figure(f"seal_records_per_s_unbatched_{variant}", rate, "records/s", n)

        for label, sync in (("(b) batched, written, no fsync", False), ("(c) batched, written, fsync per flush", True)):
            with _tuning(variant) as encoding, tempfile.TemporaryDirectory() as tmp:
                writer = LogWriter(Path(tmp) / "log", keys, WriterPolicy(segment_max_bytes=256 * 2**20,
                                                                         payload_encoding=encoding))
                writer.open()
                per_flush = 2000  # 100 ms worth at 20k/s
                n = 0
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
            print(f"[{LABELS[variant]}] {label}: {n / cpu:,.0f} entries/s per core CPU, {n / wall:,.0f} entries/s wall;"
                  f" {written / n:.0f} bytes/entry on disk")
            figure(f"append_entries_per_s_batched{'_fsync' if sync else ''}_{variant}", n / cpu, "entries/s", n)


# --------------------------------------------------------------------------- 2. a G1's streams


class CdrTemplate:
    """Serialized messages of one type made fast: the message is serialized once (rclpy) with sentinel
    values, the sentinels' byte offsets are found, and each new message is that template with new values
    written at those offsets. Checked by deserializing (:meth:`check`)."""

    def __init__(self, msg_type: Any, build: Callable[[dict[str, np.ndarray]], Any],
                 fields: dict[str, tuple[str, int]]) -> None:
        from rclpy.serialization import serialize_message

        rng = np.random.default_rng(12345)
        sentinels: dict[str, np.ndarray] = {}
        for name, (dtype, count) in fields.items():
            kind = np.dtype(dtype)
            if kind.kind == "f":
                sentinels[name] = (rng.random(count) * 1e6 + 7e5).astype(kind)
            else:
                top = min(int(np.iinfo(kind).max), (1 << (kind.itemsize * 8 - 1)) - 1)
                sentinels[name] = rng.integers(1 << (kind.itemsize * 8 - 3), top, count, dtype=kind)
        self.msg_type = msg_type
        self.template = np.frombuffer(serialize_message(build(sentinels)), np.uint8)
        raw = self.template.tobytes()
        self.offsets: dict[str, tuple[int, np.dtype[Any], int]] = {}
        for name, values in sentinels.items():
            little = values.dtype.newbyteorder("<")
            pattern = values.astype(little).tobytes()
            at = raw.find(pattern)
            if at < 0 or raw.find(pattern, at + 1) >= 0:
                raise RuntimeError(f"{msg_type.__name__}: field {name} not found exactly once in the template")
            self.offsets[name] = (at, little, len(values))

    def render(self, values: dict[str, np.ndarray]) -> np.ndarray:
        rows = len(next(iter(values.values())))
        out = np.repeat(self.template[None, :], rows, axis=0)
        for name, (at, dtype, count) in self.offsets.items():
            column = np.ascontiguousarray(np.asarray(values[name]).astype(dtype).reshape(rows, count))
            out[:, at : at + dtype.itemsize * count] = column.view(np.uint8).reshape(rows, -1)
        return out

    def check(self, row: bytes, expect: dict[str, Any]) -> None:
        from rclpy.serialization import deserialize_message

        message = deserialize_message(row, self.msg_type)
        for path, value in expect.items():
            got = message
            for part in path.split("."):
                got = got[int(part)] if part.isdigit() else getattr(got, part)
            if not np.array_equal(np.asarray(got, dtype=np.asarray(value).dtype), np.asarray(value)):
                raise RuntimeError(f"{self.msg_type.__name__}.{path}: template gives {got!r}, expected {value!r}")


def _stamps(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sec = np.floor(t)
    return sec.astype(np.int32), np.clip(np.round((t - sec) * 1e9), 0, 999_999_999).astype(np.uint32)


class G1Streams:
    """What a walking G1 publishes, one second at a time (see the module docstring). ``standing``: the G1
    outside service hours, standing still (or docked) with the guard and recorder running: the same
    sensor streams at the same rates carrying only the noise of a standing robot (posture held, holding
    torques, gravity on the IMU, a still odometry estimate), the Heartbeat and SafetyState; no joint and
    no velocity commands (the gate refuses motion outside service hours)."""

    def __init__(self, seed: int = 7, float64_state: bool = False, start_s: float = 1_780_000_000.0,
                 standing: bool = False) -> None:
        from ftrobot_msgs.msg import Heartbeat, SafetyState, TopicHealth
        from geometry_msgs.msg import Twist
        from nav_msgs.msg import Odometry
        from sensor_msgs.msg import Imu, JointState
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        rng = np.random.default_rng(seed)
        self.rng = rng
        self.t0 = start_s
        self.float64_state = float64_state
        self.standing = standing
        n = len(G1_JOINTS)
        self.q0 = np.array([-0.1, 0, 0, 0.3, -0.2, 0] * 2 + [0, 0, 0] + [0.2, 0.2, 0, 0.9, 0, 0, 0]
                           + [0.2, -0.2, 0, 0.9, 0, 0, 0])
        amp = np.array([0.45, 0.06, 0.05, 0.6, 0.3, 0.05] * 2 + [0.08, 0.03, 0.04] + [0.3, 0.05, 0.05, 0.2, 0.05, 0.03, 0.03] * 2)
        self.amp = amp * rng.uniform(0.85, 1.15, n)
        self.amp2 = amp * rng.uniform(0.1, 0.3, n)
        self.phase = rng.uniform(0, 2 * np.pi, n)
        self.phase[6:12] = self.phase[0:6] + np.pi  # legs in anti-phase
        self.phase2 = rng.uniform(0, 2 * np.pi, n)
        self.tau_bias = G1_EFFORT_LIMIT * rng.uniform(-0.1, 0.1, n)
        self.tau_amp = G1_EFFORT_LIMIT * rng.uniform(0.05, 0.3, n)
        self.tau_noise = G1_EFFORT_LIMIT * 0.004
        self.theta = self.x = self.y = self.yaw = 0.0
        self.second = 0
        self.certificate = rng.integers(0, 256, 520).astype(np.uint8).tolist()  # DER: random-looking, constant
        names = list(G1_JOINTS)
        stamp = {"sec": ("<i4", 1), "nanosec": ("<u4", 1)}

        def with_stamp(msg: Any, s: dict[str, np.ndarray]) -> Any:
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(s["sec"][0]), int(s["nanosec"][0])
            return msg

        self.joint_state = CdrTemplate(JointState, lambda s: with_stamp(JointState(
            name=names, position=s["position"].tolist(), velocity=s["velocity"].tolist(),
            effort=s["effort"].tolist()), s), {**stamp, "position": ("<f8", n), "velocity": ("<f8", n),
                                               "effort": ("<f8", n)})

        def imu(s: dict[str, np.ndarray]) -> Any:
            msg = with_stamp(Imu(), s)
            msg.header.frame_id = "imu_in_pelvis"
            o = msg.orientation
            o.x, o.y, o.z, o.w = s["orientation"].tolist()
            msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = s["gyro"].tolist()
            a = msg.linear_acceleration
            a.x, a.y, a.z = s["accel"].tolist()
            return msg

        self.imu = CdrTemplate(Imu, imu, {**stamp, "orientation": ("<f8", 4), "gyro": ("<f8", 3), "accel": ("<f8", 3)})

        def odom(s: dict[str, np.ndarray]) -> Any:
            msg = with_stamp(Odometry(child_frame_id="pelvis"), s)
            msg.header.frame_id = "odom"
            p, t = msg.pose.pose, msg.twist.twist
            p.position.x, p.position.y, p.position.z = s["position"].tolist()
            p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = s["orientation"].tolist()
            t.linear.x, t.linear.y, t.linear.z = s["linear"].tolist()
            t.angular.x, t.angular.y, t.angular.z = s["angular"].tolist()
            return msg

        self.odom = CdrTemplate(Odometry, odom, {**stamp, "position": ("<f8", 3), "orientation": ("<f8", 4),
                                                 "linear": ("<f8", 3), "angular": ("<f8", 3)})
        self.command = CdrTemplate(JointTrajectory, lambda s: with_stamp(JointTrajectory(
            joint_names=names, points=[JointTrajectoryPoint(positions=s["positions"].tolist())]), s),
            {**stamp, "positions": ("<f8", n)})

        def twist(s: dict[str, np.ndarray]) -> Any:
            msg = Twist()
            msg.linear.x, msg.angular.z = float(s["vx"][0]), float(s["yaw_rate"][0])
            return msg

        self.twist = CdrTemplate(Twist, twist, {"vx": ("<f8", 1), "yaw_rate": ("<f8", 1)})
        watched = ["/joint_states", "/imu", "/odom", "/guard/in/joint_command"]

        def heartbeat(s: dict[str, np.ndarray]) -> Any:
            msg = with_stamp(Heartbeat(
                format_version=1, identity_number="440304-RB-2026-000123-8", robot_name="Xiaofu-07",
                department="Futian Street Service Center", boot_id="5f0c9a6e2d7b4e1f9a3c8b6d0e2f4a1c",
                software_digest="9e" * 32, config_digest="c4" * 32, guardian_on_duty="G-440304-0007",
                safety_mode=1, safety_mode_name="NORMAL", certificate=self.certificate,
                sequence=int(s["sequence"][0]), uptime=float(s["uptime"][0]),
                log_checkpoint_sequence=int(s["checkpoint"][0]), log_segment_id="3e" * 16, log_chain_head="ab" * 32,
                log_checkpoint_signature=s["checkpoint_signature"].tolist(), signature=s["signature"].tolist()), s)
            msg.log_checkpoint_stamp.sec = int(s["sec"][0]) - 1
            msg.watched_topics = [TopicHealth(topic=w, ever_received=True, age=float(s[f"age{i}"][0]), max_age=0.5,
                                              healthy=True) for i, w in enumerate(watched)]
            return msg

        self.heartbeat = CdrTemplate(Heartbeat, heartbeat, {
            **stamp, "sequence": ("<u8", 1), "uptime": ("<f8", 1), "checkpoint": ("<u8", 1),
            "checkpoint_signature": ("u1", 64), "signature": ("u1", 64), **{f"age{i}": ("<f8", 1) for i in range(4)}})
        self._chain_head_at = self.heartbeat.template.tobytes().find(b"ab" * 32)
        self.safety = CdrTemplate(SafetyState, lambda s: with_stamp(SafetyState(
            mode=1, mode_name="NORMAL", cause="boot check passed", source="boot", speed_scale=1.0,
            transition_count=1), s), stamp)

    def _state(self, values: np.ndarray) -> np.ndarray:
        return values if self.float64_state else values.astype(np.float32).astype(np.float64)

    def second_of_messages(self) -> list[tuple[int, str, bytes]]:
        """``(offset in 2 ms ticks, topic, CDR bytes)`` of the next second, in time order."""
        rng, n, ticks = self.rng, len(G1_JOINTS), 500
        tt = np.arange(ticks) * 0.002
        ts = self.second + tt
        if self.standing:  # no gait: the posture q0, holding torques, only sensor noise
            speed, yaw_rate, gait_hz = np.zeros(ticks), np.zeros(ticks), np.zeros(ticks)
        else:
            speed = np.clip(0.45 + 0.35 * np.sin(2 * np.pi * ts / 47) + 0.2 * np.sin(2 * np.pi * ts / 13 + 1), 0, 0.9)
            yaw_rate = 0.3 * np.sin(2 * np.pi * ts / 29)
            gait_hz = 0.9 + 0.5 * speed
        theta = self.theta + np.cumsum(2 * np.pi * gait_hz * 0.002)
        scale = (speed / 0.9)[:, None]
        arg, arg2 = theta[:, None] + self.phase, 2 * theta[:, None] + self.phase2
        q_ref = self.q0 + scale * (self.amp * np.sin(arg) + self.amp2 * np.sin(arg2))
        dq_ref = scale * (self.amp * np.cos(arg) + 2 * self.amp2 * np.cos(arg2)) * (2 * np.pi * gait_hz)[:, None]
        stamp_t = self.t0 + self.second + tt + rng.normal(0, 20e-6, ticks)
        sec, nsec = _stamps(stamp_t)
        position = self._state(q_ref + rng.normal(0, 2e-4, (ticks, n)))
        effort = self._state(self.tau_bias + scale * self.tau_amp * np.sin(arg + 0.4)
                             + rng.normal(0, 1, (ticks, n)) * self.tau_noise)
        joint_states = self.joint_state.render({
            "sec": sec, "nanosec": nsec, "position": position,
            "velocity": self._state(dq_ref + rng.normal(0, 0.015, (ticks, n))), "effort": effort})
        yaw = self.yaw + np.cumsum(yaw_rate * 0.002)
        roll = 0.02 * scale[:, 0] * np.sin(theta)
        pitch = 0.03 + 0.015 * scale[:, 0] * np.sin(2 * theta)
        cr, sr, cp, sp = np.cos(roll / 2), np.sin(roll / 2), np.cos(pitch / 2), np.sin(pitch / 2)
        cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
        quat = np.stack([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy,
                         cr * cp * cy + sr * sp * sy], 1)
        gyro = np.stack([np.gradient(roll, 0.002), np.gradient(pitch, 0.002), yaw_rate], 1) + rng.normal(0, 0.005, (ticks, 3))
        accel = np.stack([0.3 * scale[:, 0] * np.sin(2 * theta), 0.2 * scale[:, 0] * np.sin(theta),
                          9.81 + 1.2 * scale[:, 0] * np.sin(2 * theta)], 1) + rng.normal(0, 0.05, (ticks, 3))
        imu = self.imu.render({"sec": sec, "nanosec": nsec, "orientation": self._state(quat),
                               "gyro": self._state(gyro), "accel": self._state(accel)})
        x = self.x + np.cumsum(speed * np.cos(yaw) * 0.002)
        y = self.y + np.cumsum(speed * np.sin(yaw) * 0.002)
        self.theta, self.x, self.y, self.yaw = float(theta[-1]), float(x[-1]), float(y[-1]), float(yaw[-1])
        k = slice(0, ticks, 5)  # 100 Hz
        m = len(range(0, ticks, 5))
        odom = self.odom.render({
            "sec": sec[k], "nanosec": nsec[k],
            "position": np.stack([x[k], y[k], 0.78 + 0.01 * scale[k, 0] * np.sin(2 * theta[k])], 1) + rng.normal(0, 1e-3, (m, 3)),
            "orientation": np.stack([np.zeros(m), np.zeros(m), np.sin(yaw[k] / 2), np.cos(yaw[k] / 2)], 1) + rng.normal(0, 1e-4, (m, 4)),
            "linear": np.stack([speed[k], np.zeros(m), 0.02 * scale[k, 0] * np.cos(2 * theta[k])], 1) + rng.normal(0, 0.01, (m, 3)),
            "angular": np.stack([np.zeros(m), np.zeros(m), yaw_rate[k]], 1) + rng.normal(0, 0.005, (m, 3))})
        command = self.command.render({"sec": sec[k], "nanosec": nsec[k], "positions": q_ref[k]})
        kv = slice(0, ticks, 25)  # 20 Hz
        twist = self.twist.render({"vx": speed[kv], "yaw_rate": yaw_rate[kv]})
        self.second += 1
        heartbeat = self.heartbeat.render({
            "sec": sec[:1], "nanosec": nsec[:1], "sequence": np.array([self.second]),
            "uptime": np.array([self.second + 0.0173]), "checkpoint": np.array([self.second * 120]),
            "checkpoint_signature": rng.integers(0, 256, (1, 64)), "signature": rng.integers(0, 256, (1, 64)),
            **{f"age{i}": rng.uniform(0, 0.01, 1) for i in range(3)},
            # the joint command stream: fresh while walking; standing, its age grows (no commands)
            "age3": np.array([self.second + 0.004]) if self.standing else rng.uniform(0, 0.01, 1)})
        heartbeat[0, self._chain_head_at : self._chain_head_at + 64] = np.frombuffer(os.urandom(32).hex().encode(), np.uint8)
        safety = self.safety.render({"sec": sec[:1], "nanosec": nsec[:1]})
        if self.second == 1:  # the templates write what was meant (checked by deserializing with rclpy)
            self.joint_state.check(joint_states[7].tobytes(), {"position": position[7], "effort": effort[7],
                                                               "header.stamp.nanosec": nsec[7]})
            self.imu.check(imu[3].tobytes(), {"orientation.w": self._state(quat)[3, 3], "header.stamp.sec": sec[3]})
            if not self.standing:
                self.command.check(command[2].tobytes(), {"points.0.positions": q_ref[10]})
                self.twist.check(twist[1].tobytes(), {"linear.x": speed[25], "angular.z": yaw_rate[25]})
            self.heartbeat.check(heartbeat[0].tobytes(), {"sequence": 1, "certificate": self.certificate})
        out: list[tuple[int, str, bytes]] = []
        for i in range(ticks):
            out.append((i, "joint_states", joint_states[i].tobytes()))
            out.append((i, "imu", imu[i].tobytes()))
            if i % 5 == 0:
                out.append((i, "odom", odom[i // 5].tobytes()))
                if not self.standing:
                    forwarded = command[i // 5].tobytes()  # the gate forwards what it accepts unchanged
                    out.append((i, "guard/in/joint_command", forwarded))
                    out.append((i, "hw/joint_command", forwarded))
            if i % 25 == 0 and not self.standing:
                velocity = twist[i // 25].tobytes()
                out.append((i, "guard/in/cmd_vel", velocity))
                out.append((i, "hw/cmd_vel", velocity))
            if i == 0:
                out.append((i, "heartbeat", heartbeat[0].tobytes()))
                out.append((i, "safety_state", safety[0].tobytes()))
        return out


# --------------------------------------------------------------------------- 2. bytes per day


def _incident_spec(specs: dict[str, Any]) -> Any:
    """The (first) incident-tier topic of the recorder's config: a new message on it freezes the ring."""
    return next(spec for spec in specs.values() if spec.tier == "incident")


def _record_streams(encoding: str, sim_s: int, float64_state: bool, warmup_s: int = 0,
                    standing: bool = False) -> dict[str, float]:
    """Bytes of ``sim_s`` of the long-term tier after ``warmup_s`` (not counted), through the recorder's
    policy and writer under a simulated clock; walking, then one incident; ``standing``: no incident
    (incidents are counted in service hours, with the walking G1's ring)."""
    import yaml

    from ftrobot_guard.blackbox.log_writer import LogWriter, WriterPolicy
    from ftrobot_guard.blackbox.recording_policy import TwoTierRecorder, parse_topic_specs
    from ftrobot_guard.blackbox.segment_reader import list_segments

    params = yaml.safe_load((REPO / "config" / "recorder.yaml").read_text())["/**/recorder"]["ros__parameters"]
    specs = {s.topic: s for s in parse_topic_specs(params["topics"])}
    streams = G1Streams(float64_state=float64_state, standing=standing)
    jitter = np.random.default_rng(11)
    clock_ns = [int(streams.t0 * 1e9)]
    policy = WriterPolicy(fsync_interval_ms=params["fsync_interval_ms"],
                          checkpoint_every_records=params["checkpoint_every_records"],
                          checkpoint_every_s=params["checkpoint_every_s"],
                          segment_max_bytes=int(params["segment_max_mb"] * 2**20),
                          segment_max_age_s=params["segment_max_age_s"], payload_encoding=encoding)
    flush_ticks = params["fsync_interval_ms"] // 2
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log"
        writer = LogWriter(log, _keys(), policy, clock=lambda: clock_ns[0])
        writer.open()
        backlog = {"backlog_sink": writer.append_backlog} if hasattr(writer, "append_backlog") else {}
        recorder = TwoTierRecorder(list(specs.values()), writer.append, params["ring_seconds"],
                                   int(params["ring_max_mb"] * 2**20), params["post_incident_s"], **backlog)
        recorder.guardian = "G-440304-0007"
        dump_cpu_s = [0.0]

        def run(seconds: int, incident: bool = False) -> None:
            dumping = False
            for _ in range(seconds):
                base = int((streams.t0 + streams.second) * 1e9)
                messages = streams.second_of_messages()
                latency = jitter.integers(30_000, 400_000, len(messages))
                for (tick, topic, data), late in zip(messages, latency, strict=True):
                    now = base + tick * 2_000_000
                    if incident:
                        recorder.on_message(_incident_spec(specs), os.urandom(400), now)
                        incident, dumping = False, True
                    recorder.on_message(specs[topic], data, now + int(late))
                    if tick % flush_ticks == flush_ticks - 1:
                        clock_ns[0] = now + 2_000_000
                        start = time.process_time()
                        writer.flush(sync=False)
                        if dumping:  # the flushes that seal the frozen ring (60 s at full rate), as the recorder does
                            dump_cpu_s[0] += time.process_time() - start
                            dumping = getattr(writer.stats, "backlog_entries", 0) > 0

        run(warmup_s)  # the first segments after a start (no or a provisional dictionary): not scaled to a day
        warm_bytes, warm_records = writer.stats.bytes_written, writer.stats.records_written
        warm_segments = len(list_segments(log).segments)
        run(sim_s)
        long_term_end = writer.stats.bytes_written
        long_term = long_term_end - warm_bytes
        records = writer.stats.records_written - warm_records
        if not standing:
            run(int(params["post_incident_s"]), incident=True)
        window = writer.stats.bytes_written - long_term_end
        writer.close()
        headers = [item.prefix.records_offset for item in list_segments(log).segments]
    lt_per_s = long_term / sim_s
    # the ring dump and the full-rate extra
    incident = 0.0 if standing else window - lt_per_s * params["post_incident_s"]
    per_day_records = lt_per_s * 86400 + INCIDENTS_PER_DAY * incident
    segments_per_day = max(86400 / params["segment_max_age_s"], per_day_records / (params["segment_max_mb"] * 2**20))
    per_day = per_day_records + segments_per_day * float(np.mean(headers[2:] or headers[1:] or headers))
    return {"long_term_per_day": lt_per_s * 86400, "long_term_per_s": lt_per_s, "incident": incident,
            "per_day": per_day, "segment_max_bytes": params["segment_max_mb"] * 2**20,
            "segment_max_age_s": params["segment_max_age_s"], "sim_s": sim_s,
            "header": float(np.mean(headers[2:] or headers[1:] or headers)), "records_per_s": records / sim_s,
            "ring_dump_cpu_s": dump_cpu_s[0], "warm_segments": warm_segments,
            "budget_gib": params["disk_budget_gb"]}


# --------------------------------------------------------------------------- 3. crash bound at an incident


def bench_incident_latency(after_s: float = 6.0) -> None:
    """Worst time from append to durable (written and fsynced) of a live entry while an incident's ring
    dump is sealed. Real time, real clock, the recorder's FlushThread and recording policy: the ring is
    filled with 60 s of a walking G1, then the G1 streams at full rate in real time (a producer thread, as
    the recorder's intake), an incident is reported, and every live entry appended after it is timed."""
    import threading

    import yaml

    from ftrobot_guard.blackbox.log_writer import FlushThread, LogWriter, WriterPolicy
    from ftrobot_guard.blackbox.recording_policy import TwoTierRecorder, parse_topic_specs

    params = yaml.safe_load((REPO / "config" / "recorder.yaml").read_text())["/**/recorder"]["ros__parameters"]
    specs = {s.topic: s for s in parse_topic_specs(params["topics"])}
    streams = G1Streams(start_s=time.time() - params["ring_seconds"] - 1)
    policy = WriterPolicy(fsync_interval_ms=params["fsync_interval_ms"],
                          checkpoint_every_records=params["checkpoint_every_records"],
                          checkpoint_every_s=params["checkpoint_every_s"],
                          segment_max_bytes=int(params["segment_max_mb"] * 2**20),
                          segment_max_age_s=params["segment_max_age_s"])
    with tempfile.TemporaryDirectory() as tmp:
        writer = LogWriter(Path(tmp) / "log", _keys(), policy)
        writer.open()
        split = hasattr(writer, "append_backlog")  # False: the writer before issue 7 item 11's fix (one queue)
        extra = {"backlog_sink": writer.append_backlog} if split else {}
        recorder = TwoTierRecorder(list(specs.values()), writer.append, params["ring_seconds"],
                                   int(params["ring_max_mb"] * 2**20), params["post_incident_s"], **extra)

        def counters() -> tuple[int, int, int]:
            stats = writer.stats_snapshot()
            if split:
                return stats.live_entries_appended, stats.live_entries_durable, stats.backlog_entries
            return stats.entries_appended, stats.entries_durable, stats.entries_appended - stats.entries_durable

        durable: list[tuple[float, int, int]] = []
        flusher = FlushThread(writer, on_flushed=lambda: durable.append((time.perf_counter(), *counters()[1:])))
        for _ in range(int(params["ring_seconds"])):  # the ring: the last minute, as fast as it goes
            base = int((streams.t0 + streams.second) * 1e9)
            for tick, topic, data in streams.second_of_messages():
                recorder.on_message(specs[topic], data, base + tick * 2_000_000)
        writer.flush()
        flusher.start()
        appended: list[tuple[float, int]] = []
        stop = threading.Event()
        incident_at = [0.0]

        def produce() -> None:  # the G1 at full rate in real time; the incident after 1 s
            start = time.perf_counter()
            second = 0
            while not stop.is_set():
                messages = streams.second_of_messages()
                for tick, topic, data in messages:
                    due = start + second + tick * 0.002
                    delay = due - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    if second == 1 and tick == 0 and not incident_at[0]:
                        incident_at[0] = time.perf_counter()
                        recorder.on_message(_incident_spec(specs), os.urandom(400), time.time_ns())
                    recorder.on_message(specs[topic], data, time.time_ns())
                    if incident_at[0]:
                        appended.append((time.perf_counter(), counters()[0]))
                    if stop.is_set():
                        return
                second += 1

        producer = threading.Thread(target=produce)
        producer.start()
        time.sleep(1.0 + after_s)
        stop.set()
        producer.join()
        flusher.stop()
        writer.close()
    latencies = []
    for t_append, n in appended:
        done = next((t for t, d, _queued in durable if d >= n and t >= t_append), None)
        if done is not None:
            latencies.append(done - t_append)
    drained = next((t - incident_at[0] for t, _d, queued in durable if t > incident_at[0] + 0.2 and queued == 0),
                   float("nan"))
    label = "backlog lane (after)" if split else "one queue (before)"
    worst = max(latencies) if latencies else float("nan")
    p99 = float(np.percentile(latencies, 99)) if latencies else float("nan")
    print(f"\nlive entries during an incident's ring dump ({label}): {len(latencies)} of {len(appended)} durable;"
          f" append -> fsynced worst {worst * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms"
          f" (fsync interval {params['fsync_interval_ms']} ms)"
          + (f"; the whole dump was on disk {drained:.1f} s after the incident" if split else ""))
    figure(f"incident_live_latency_worst_{'split' if split else 'single'}", worst * 1e3, "ms", len(latencies),
           "blackbox_crash_bound")
    figure(f"incident_live_latency_p99_{'split' if split else 'single'}", p99 * 1e3, "ms", len(latencies),
           "blackbox_crash_bound")


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _service_week(envelope: Path = REPO / "config" / "envelope" / "g1.yaml") -> tuple[float, int, str]:
    """Hours a week inside the envelope's service hours, the number of days with any, and a summary."""
    import yaml

    service = yaml.safe_load(envelope.read_text())["service_hours"]
    per_day = dict.fromkeys(WEEKDAYS, 0.0)
    parts = []
    for window in service["weekly"]:
        (oh, om), (ch, cm) = (map(int, str(window[k]).split(":")) for k in ("open", "close"))
        hours = (ch * 60 + cm - oh * 60 - om) / 60
        for day in window["days"]:
            per_day[day] += hours
        parts.append(f"{'/'.join(window['days'])} {window['open']}-{window['close']}")
    return sum(per_day.values()), sum(1 for h in per_day.values() if h > 0), \
        f"{', '.join(parts)} ({service.get('time_zone', '?')})"


def _service_hours_week(walking: dict[str, float], idle: dict[str, float], service_h: float,
                        incidents: int) -> dict[str, float]:
    """Bytes of one week: ``service_h`` walking, the rest of the 168 h standing, ``incidents`` incidents
    (each the walking ring and full-rate window), segment headers at one segment per segment_max_age_s
    (or more when the size limit rotates sooner), each the measured header of its mode."""
    idle_h = 168.0 - service_h
    records = (service_h * walking["long_term_per_s"] + idle_h * idle["long_term_per_s"]) * 3600 \
        + incidents * walking["incident"]
    segments = max(168 * 3600 / walking["segment_max_age_s"], records / walking["segment_max_bytes"])
    header = (service_h * walking["header"] + idle_h * idle["header"]) / 168
    week = records + segments * header
    return {"per_week": week, "per_day": week / 7, "idle_h": idle_h}


def bench_bytes_per_day(sim_minutes: float, float64_state: bool, warmup_minutes: float,
                        variants: tuple[str, ...], idle_minutes: float = 0.0) -> None:
    try:
        import ftrobot_msgs.msg  # noqa: F401
        import rclpy.serialization  # noqa: F401
    except ImportError:
        print("rclpy/messages not importable: bytes/day skipped")
        return
    sim_s, warmup_s = int(sim_minutes * 60), int(warmup_minutes * 60)
    kind = "float64 state (like the MuJoCo simulator)" if float64_state else "G1 (float32 state widened)"
    print(f"\nbytes per day, 24 h walking, at the default tiers: {sim_minutes:g} min long-term (after {warmup_minutes:g} min warm-up)"
          f" + one incident, {kind} streams")
    print(f"{'writer':<24} {'long-term MB/day':>16} {'MB/incident':>12} {'MB/day':>8} {'days/GiB':>9}"
          f" {'GiB/183 d':>10}  within {TARGET_GIB_183_DAYS:g} GiB")
    suffix = "_float64_state" if float64_state else ""
    results: dict[str, dict[str, float]] = {}
    for variant in variants:
        start = time.perf_counter()
        with _tuning(variant) as encoding:
            r = _record_streams(encoding, sim_s, float64_state, warmup_s)
        results[variant] = r
        gib_183 = 183 * r["per_day"] / 2**30
        print(f"{LABELS[variant]:<24} {r['long_term_per_day'] / 1e6:>16.1f} {r['incident'] / 1e6:>12.1f}"
              f" {r['per_day'] / 1e6:>8.1f} {2**30 / r['per_day']:>9.2f} {gib_183:>10.1f}"
              f"  {'yes' if gib_183 <= TARGET_GIB_183_DAYS else 'NO'}"
              f"   ({time.perf_counter() - start:.0f} s; {r['records_per_s']:.1f} records/s;"
              f" segment header {r['header'] / 1e3:.1f} kB; {r['warm_segments']:.0f} segments in the warm-up;"
              f" ring dump sealed in {r['ring_dump_cpu_s']:.2f} CPU s)")
        figure(f"bytes_per_day_{variant}{suffix}", r["per_day"] / 1e6, "MB/day", sim_s, "blackbox_storage")
        figure(f"long_term_bytes_per_day_{variant}{suffix}", r["long_term_per_day"] / 1e6, "MB/day", sim_s,
               "blackbox_storage")
        figure(f"incident_bytes_{variant}{suffix}", r["incident"] / 1e6, "MB/incident", 1, "blackbox_storage")
        figure(f"days_per_gib_{variant}{suffix}", 2**30 / r["per_day"], "days/GiB", sim_s, "blackbox_storage")
        figure(f"gib_for_183_days_{variant}{suffix}", gib_183, "GiB", sim_s, "blackbox_storage")
        figure(f"ring_dump_seal_cpu_s_{variant}{suffix}", r["ring_dump_cpu_s"], "CPU s", 1, "blackbox_storage")
    if idle_minutes > 0:
        _bench_service_hours(results, idle_minutes, float64_state, warmup_minutes, suffix)
    if "before" in results and "after" in results:
        before, after = results["before"]["per_day"], results["after"]["per_day"]
        print(f"after/before (24 h walking): {after / before:.1%} of the bytes ({(before - after) / 1e6:.1f} MB/day fewer);"
              f" the default budget of {results['after']['budget_gib']:g} GiB holds"
              f" {results['after']['budget_gib'] * 2**30 / after:.0f} days"
              f" (before: {results['before']['budget_gib'] * 2**30 / before:.0f})")


def _bench_service_hours(walking: dict[str, dict[str, float]], idle_minutes: float, float64_state: bool,
                         warmup_minutes: float, suffix: str) -> None:
    """The week of a robot employee: walking inside the envelope's service hours, standing the rest."""
    service_h, working_days, summary = _service_week()
    incidents = INCIDENTS_PER_DAY * working_days
    idle_s, warmup_s = int(idle_minutes * 60), int(warmup_minutes * 60)
    print(f"\nbytes per day, service hours (config/envelope/g1.yaml: {summary}): a week = {service_h:g} h walking"
          f" + {168 - service_h:g} h standing idle (sensor streams at the same rates, heartbeat and safety_state"
          f" 1 Hz, no joint or velocity commands; idle measured {idle_minutes:g} min after {warmup_minutes:g} min"
          f" warm-up) + {incidents} incidents ({INCIDENTS_PER_DAY} per working day x {working_days} working days,"
          f" assumed to happen while walking: the walking ring and window); averaged over 7 days; closed dates"
          f" (holidays) counted as working days; the segment whose hour spans a switch between walking and"
          f" standing is counted at the steady rate of each mode")
    print(f"{'writer':<24} {'walking MB/h':>12} {'idle MB/h':>10} {'MB/incident':>12} {'MB/week':>8} {'MB/day':>8}"
          f" {'days/GiB':>9} {'GiB/183 d':>10}  within {TARGET_GIB_183_DAYS:g} GiB")
    for variant, walk in walking.items():
        start = time.perf_counter()
        with _tuning(variant) as encoding:
            idle = _record_streams(encoding, idle_s, float64_state, warmup_s, standing=True)
        week = _service_hours_week(walk, idle, service_h, incidents)
        gib_183 = 183 * week["per_day"] / 2**30
        walk_h, idle_h = walk["long_term_per_s"] * 3600, idle["long_term_per_s"] * 3600
        print(f"{LABELS[variant]:<24} {walk_h / 1e6:>12.2f} {idle_h / 1e6:>10.2f} {walk['incident'] / 1e6:>12.1f}"
              f" {week['per_week'] / 1e6:>8.0f} {week['per_day'] / 1e6:>8.1f} {2**30 / week['per_day']:>9.2f}"
              f" {gib_183:>10.1f}  {'yes' if gib_183 <= TARGET_GIB_183_DAYS else 'NO'}"
              f"   (idle run {time.perf_counter() - start:.0f} s; {idle['records_per_s']:.1f} records/s idle;"
              f" segment header {idle['header'] / 1e3:.1f} kB idle, {walk['header'] / 1e3:.1f} kB walking)")
        figure(f"walking_bytes_per_hour_{variant}{suffix}", walk_h / 1e6, "MB/h", int(walk["sim_s"]),
               "blackbox_storage")
        figure(f"idle_bytes_per_hour_{variant}{suffix}", idle_h / 1e6, "MB/h", idle_s, "blackbox_storage")
        figure(f"bytes_per_day_service_hours_{variant}{suffix}", week["per_day"] / 1e6, "MB/day", idle_s,
               "blackbox_storage")
        figure(f"days_per_gib_service_hours_{variant}{suffix}", 2**30 / week["per_day"], "days/GiB", idle_s,
               "blackbox_storage")
        figure(f"gib_for_183_days_service_hours_{variant}{suffix}", gib_183, "GiB", idle_s, "blackbox_storage")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per sealing measurement")
    parser.add_argument("--sim-minutes", type=float, default=20.0, help="simulated minutes of the long-term tier")
    parser.add_argument("--float64-state", action="store_true", help="joint states, IMU, odometry as full float64")
    parser.add_argument("--warmup-minutes", type=float, default=2.5,
                        help="simulated minutes after a start that are not scaled to a day (0: counted as steady)")
    parser.add_argument("--idle-minutes", type=float, default=20.0,
                        help="simulated minutes of the standing (idle) G1 for the service-hours week (0: skipped)")
    parser.add_argument("--with-zlib", action="store_true", help="also format version 1 (zlib)")
    parser.add_argument("--skip-sealing", action="store_true", help="only the bytes per day")
    parser.add_argument("--only-incident", action="store_true", help="only the crash bound at an incident")
    args = parser.parse_args()
    if args.only_incident:
        bench_incident_latency()
        for item in FIGURES:
            print(json.dumps(item))
        return
    variants = ("zlib", "before", "after") if args.with_zlib else ("before", "after")
    if not args.skip_sealing:
        bench_sealing(args.seconds, variants)
    bench_incident_latency()
    bench_bytes_per_day(args.sim_minutes, args.float64_state, args.warmup_minutes, variants, args.idle_minutes)
    for item in FIGURES:
        print(json.dumps(item))


if __name__ == "__main__":
    main()
