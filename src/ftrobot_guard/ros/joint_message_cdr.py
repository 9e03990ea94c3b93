"""The guard's high-rate messages read and written as DDS carries them (CDR), without rclpy message objects.

At 500 Hz-1 kHz the guard's cost is dominated by rclpy turning messages into Python objects and back
(measured with py-spy on bench/gate_latency.py: ``Publisher.publish`` of a 29-joint JointTrajectory
alone was a quarter of the guard's CPU at 1 kHz). This module reads ``trajectory_msgs/JointTrajectory``,
``sensor_msgs/JointState``, ``sensor_msgs/Imu`` and ``nav_msgs/Odometry`` from their serialized bytes,
and writes the JointTrajectory the guard forwards, straight from and to numpy arrays.

The encoding is plain CDR (XCDR1), little-endian, as ``rmw_fastrtps`` and ``rmw_cyclonedds`` send it:
a 4-byte encapsulation header ``00 01 00 00``, then the fields in order, each primitive aligned to its
size (8 for float64) counted from the end of that header; a string is a uint32 length that includes
its terminating NUL, then the bytes; a sequence is a uint32 count, then the elements.

The readers refuse (:class:`CdrError`) whatever they do not read exactly as rclpy's deserializer would:
another encapsulation (big-endian included), a truncated buffer, a string without its NUL, with an
embedded NUL or invalid UTF-8. Like rclpy, they ignore the padding bytes' values and what follows the
message (rmw's serializer leaves both uninitialised: ``serialize_message`` returns a buffer sized by
its estimate, with whatever memory held after the last field). The caller then lets rclpy deserialize the message, so
this fast path never decides a case on its own (``GuardNode`` does so). The views carry the same
attribute names as the rclpy messages (``msg.header.stamp.sec``, ``msg.position``...), with numeric
arrays as read-only ``numpy.float64`` arrays. Tests compare both ways with rclpy's own serializer on
generated messages.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

ENCAPSULATION = b"\x00\x01\x00\x00"   # CDR_LE, no options
_U32 = struct.Struct("<I")
_I32U32 = struct.Struct("<iI")
_NO_VALUES = np.zeros(0, dtype=np.float64)
_NO_VALUES.setflags(write=False)
_LAST_STRINGS: dict[str, tuple[bytes, tuple[str, ...]]] = {}   # kind -> the last string block read and its strings


class CdrError(ValueError):
    """Bytes this module does not read exactly as rclpy would (the caller falls back to rclpy)."""


class TimeView(NamedTuple):
    sec: int
    nanosec: int


class HeaderView(NamedTuple):
    stamp: TimeView
    frame_id: str


class Vector3View(NamedTuple):
    x: float
    y: float
    z: float


class QuaternionView(NamedTuple):
    x: float
    y: float
    z: float
    w: float


class JointTrajectoryPointView(NamedTuple):
    positions: np.ndarray
    velocities: np.ndarray
    accelerations: np.ndarray
    effort: np.ndarray
    time_from_start: TimeView


class JointTrajectoryView(NamedTuple):
    header: HeaderView
    joint_names: list[str]
    points: list[JointTrajectoryPointView]


class JointStateView(NamedTuple):
    header: HeaderView
    name: list[str]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


class ImuView(NamedTuple):
    header: HeaderView
    orientation: QuaternionView
    orientation_covariance: np.ndarray
    angular_velocity: Vector3View
    angular_velocity_covariance: np.ndarray
    linear_acceleration: Vector3View
    linear_acceleration_covariance: np.ndarray


class PoseView(NamedTuple):
    position: Vector3View
    orientation: QuaternionView


class PoseWithCovarianceView(NamedTuple):
    pose: PoseView
    covariance: np.ndarray


class TwistView(NamedTuple):
    linear: Vector3View
    angular: Vector3View


class TwistWithCovarianceView(NamedTuple):
    twist: TwistView
    covariance: np.ndarray


class OdometryView(NamedTuple):
    header: HeaderView
    child_frame_id: str
    pose: PoseWithCovarianceView
    twist: TwistWithCovarianceView


class _Reader:
    """A cursor over one serialized message; every read checks bounds and alignment."""

    __slots__ = ("_at", "_data", "_end")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CdrError(f"serialized message expected, got {type(data).__name__}")
        self._data = bytes(data)
        if self._data[:4] != ENCAPSULATION:
            raise CdrError(f"encapsulation {self._data[:4].hex()} is not CDR little-endian (00010000)")
        self._at = 4
        self._end = len(self._data)

    def _align(self, size: int) -> None:
        self._at += (-(self._at - 4)) % size

    def _need(self, count: int) -> None:
        if self._at + count > self._end:
            raise CdrError(f"truncated: {count} bytes needed at offset {self._at}, {self._end - self._at} left")

    def u32(self) -> int:
        self._align(4)
        self._need(4)
        (value,) = _U32.unpack_from(self._data, self._at)
        self._at += 4
        return int(value)

    def time(self) -> TimeView:
        self._align(4)
        self._need(8)
        sec, nanosec = _I32U32.unpack_from(self._data, self._at)
        self._at += 8
        return TimeView(int(sec), int(nanosec))

    def string(self) -> str:
        length = self.u32()
        if length == 0:
            raise CdrError("string without its terminating NUL")  # rclpy writes at least the NUL
        self._need(length)
        raw = self._data[self._at:self._at + length]
        self._at += length
        if raw[-1] != 0 or 0 in raw[:-1]:
            raise CdrError("string not NUL-terminated, or with an embedded NUL")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CdrError(f"string is not UTF-8: {exc}") from None

    def strings(self, kind: str = "") -> list[str]:
        """A string sequence. With ``kind``, a block of bytes identical to the last one read for that kind
        (a robot sends the same joint names in every message) is not decoded again."""
        self._align(4)
        start = self._at
        if kind:
            block, names = _LAST_STRINGS.get(kind, (b"", ()))
            if block and self._data.startswith(block, start):
                self._at = start + len(block)
                return list(names)
        count = self.u32()
        self._need(count * 5)   # each at least a length and a NUL: a lying count cannot make a huge list
        decoded = [self.string() for _ in range(count)]
        if kind and self._at - start <= 8192:
            _LAST_STRINGS[kind] = (self._data[start:self._at], tuple(decoded))
        return decoded

    def doubles(self, count: int) -> np.ndarray:
        if count == 0:
            return _NO_VALUES
        self._align(8)
        self._need(8 * count)
        values = np.frombuffer(self._data, dtype="<f8", count=count, offset=self._at)
        self._at += 8 * count
        return values

    def double_sequence(self) -> np.ndarray:
        count = self.u32()
        self._need(0 if count == 0 else 8 * count)
        return self.doubles(count)

    def vector3(self) -> Vector3View:
        x, y, z = self.doubles(3).tolist()
        return Vector3View(x, y, z)

    def quaternion(self) -> QuaternionView:
        x, y, z, w = self.doubles(4).tolist()
        return QuaternionView(x, y, z, w)

    def header(self) -> HeaderView:
        return HeaderView(self.time(), self.string())

def read_joint_trajectory(data: bytes | bytearray | memoryview) -> JointTrajectoryView:
    """A serialized ``trajectory_msgs/JointTrajectory``."""
    reader = _Reader(data)
    header = reader.header()
    names = reader.strings("joint_trajectory.joint_names")
    count = reader.u32()
    reader._need(count * 20)
    points = []
    for _ in range(count):
        positions, velocities = reader.double_sequence(), reader.double_sequence()
        accelerations, effort = reader.double_sequence(), reader.double_sequence()
        points.append(JointTrajectoryPointView(positions, velocities, accelerations, effort, reader.time()))
    return JointTrajectoryView(header, names, points)


def read_joint_state(data: bytes | bytearray | memoryview) -> JointStateView:
    """A serialized ``sensor_msgs/JointState``."""
    reader = _Reader(data)
    return JointStateView(reader.header(), reader.strings("joint_state.name"), reader.double_sequence(),
                          reader.double_sequence(),
                          reader.double_sequence())


def read_imu(data: bytes | bytearray | memoryview) -> ImuView:
    """A serialized ``sensor_msgs/Imu``."""
    reader = _Reader(data)
    return ImuView(reader.header(), reader.quaternion(), reader.doubles(9), reader.vector3(), reader.doubles(9),
                   reader.vector3(), reader.doubles(9))


def read_odometry(data: bytes | bytearray | memoryview) -> OdometryView:
    """A serialized ``nav_msgs/Odometry``."""
    reader = _Reader(data)
    header, child = reader.header(), reader.string()
    pose = PoseWithCovarianceView(PoseView(reader.vector3(), reader.quaternion()), reader.doubles(36))
    twist = TwistWithCovarianceView(TwistView(reader.vector3(), reader.vector3()), reader.doubles(36))
    return OdometryView(header, child, pose, twist)


class JointTrajectoryWriter:
    """Serializes the one-point ``trajectory_msgs/JointTrajectory`` the guard forwards to the hardware.

    The joint-name block is encoded once per distinct name list (a controller sends the same names in
    every command) and reused; the numbers are copied in with numpy.
    """

    def __init__(self, frame_id: str = "") -> None:
        self._frame = frame_id.encode("utf-8") + b"\x00"
        if b"\x00" in self._frame[:-1]:
            raise ValueError("frame_id with an embedded NUL")
        self._names: dict[tuple[str, ...], bytes] = {}

    def _name_block(self, names: Sequence[str], start: int) -> bytes:
        key = tuple(names)
        block = self._names.get(key)
        if block is None:
            parts = [_U32.pack(len(key))]
            at = start + 4
            for name in key:
                encoded = name.encode("utf-8") + b"\x00"
                if b"\x00" in encoded[:-1]:
                    raise ValueError(f"joint name {name!r} has an embedded NUL")
                pad = (-at) % 4
                parts.append(b"\x00" * pad + _U32.pack(len(encoded)) + encoded)
                at += pad + 4 + len(encoded)
            block = b"".join(parts)
            if len(self._names) > 64:   # a controller changing its names all the time: do not grow without end
                self._names.clear()
            self._names[key] = block
        return block

    def write(self, sec: int, nanosec: int, names: Sequence[str], positions: np.ndarray,
              velocities: np.ndarray | None = None, efforts: np.ndarray | None = None) -> bytes:
        """One point: positions (and velocities, efforts if given), time_from_start 0."""
        out = bytearray(ENCAPSULATION)
        out += _I32U32.pack(sec, nanosec)
        out += _U32.pack(len(self._frame)) + self._frame
        out += b"\x00" * ((-(len(out) - 4)) % 4)
        out += self._name_block(names, len(out) - 4)
        out += b"\x00" * ((-(len(out) - 4)) % 4)
        out += _U32.pack(1)
        for values in (positions, velocities, None, efforts):   # accelerations: none
            array = _NO_VALUES if values is None else np.ascontiguousarray(values, dtype="<f8")
            out += b"\x00" * ((-(len(out) - 4)) % 4)
            out += _U32.pack(array.size)
            if array.size:
                out += b"\x00" * ((-(len(out) - 4)) % 8)
                out += array.tobytes()
        out += b"\x00" * ((-(len(out) - 4)) % 4)
        out += _I32U32.pack(0, 0)
        return bytes(out)
