"""The guard's CDR readers and writer agree with rclpy's own serializer on generated messages, and refuse
(never misread) whatever rclpy would read differently."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.ros.joint_message_cdr import (
    CdrError,
    JointTrajectoryWriter,
    read_imu,
    read_joint_state,
    read_joint_trajectory,
    read_odometry,
)

serialization = pytest.importorskip("rclpy.serialization")
serialize, deserialize = serialization.serialize_message, serialization.deserialize_message
from nav_msgs.msg import Odometry  # noqa: E402
from sensor_msgs.msg import Imu, JointState  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

names = st.lists(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=24),
                 max_size=32)
doubles = st.floats(allow_nan=True, allow_infinity=True, width=64)
values = st.lists(doubles, max_size=32)
stamps = st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**32 - 1))
frames = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)


def _same(read: Any, expected: Any) -> None:
    """Equal as numbers, NaN equal to NaN and -0.0 told from 0.0."""
    got = np.asarray(read, dtype=float)
    want = np.asarray(list(expected), dtype=float)
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def _trajectory(stamp: tuple[int, int], frame: str, joint_names: list[str],
                points: list[tuple[list[float], list[float], list[float], list[float], tuple[int, int]]]
                ) -> JointTrajectory:
    msg = JointTrajectory()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = frame
    msg.joint_names = joint_names
    for positions, velocities, accelerations, effort, start in points:
        point = JointTrajectoryPoint(positions=positions, velocities=velocities, accelerations=accelerations,
                                     effort=effort)
        point.time_from_start.sec, point.time_from_start.nanosec = start
        msg.points.append(point)
    return msg


@settings(max_examples=300, deadline=None)
@given(stamp=stamps, frame=frames, joint_names=names,
       points=st.lists(st.tuples(values, values, values, values, st.tuples(st.integers(-(2**31), 2**31 - 1),
                                                                          st.integers(0, 2**32 - 1))), max_size=3))
def test_a_joint_trajectory_reads_as_rclpy_wrote_it(stamp: tuple[int, int], frame: str, joint_names: list[str],
                                                    points: list[Any]) -> None:
    view = read_joint_trajectory(serialize(_trajectory(stamp, frame, joint_names, points)))
    assert (view.header.stamp.sec, view.header.stamp.nanosec) == stamp
    assert view.header.frame_id == frame and view.joint_names == joint_names
    assert len(view.points) == len(points)
    for read, (positions, velocities, accelerations, effort, start) in zip(view.points, points, strict=True):
        for got, want in ((read.positions, positions), (read.velocities, velocities),
                          (read.accelerations, accelerations), (read.effort, effort)):
            _same(got, want)
            assert not got.flags.writeable
        assert (read.time_from_start.sec, read.time_from_start.nanosec) == start


@settings(max_examples=300, deadline=None)
@given(stamp=stamps, frame=frames, joint_names=names, data=st.data())
def test_the_written_trajectory_reads_back_in_rclpy_as_the_message_given(stamp: tuple[int, int], frame: str, joint_names: list[str],
                                                          data: st.DataObject) -> None:
    count = len(joint_names)
    positions = data.draw(st.lists(doubles, min_size=count, max_size=count))
    velocities = data.draw(st.none() | st.lists(doubles, min_size=count, max_size=count))
    efforts = data.draw(st.none() | st.lists(doubles, min_size=count, max_size=count))
    writer = JointTrajectoryWriter(frame)
    for _ in range(2):  # the second time from the cached name block
        written = writer.write(stamp[0], stamp[1], joint_names, np.array(positions, dtype=float),
                               None if velocities is None else np.array(velocities, dtype=float),
                               None if efforts is None else np.array(efforts, dtype=float))
        back = deserialize(written, JointTrajectory)
        assert (back.header.stamp.sec, back.header.stamp.nanosec, back.header.frame_id) == (*stamp, frame)
        assert list(back.joint_names) == joint_names and len(back.points) == 1
        point = back.points[0]
        _same(point.positions, positions)
        _same(point.velocities, velocities or [])
        _same(point.accelerations, [])
        _same(point.effort, efforts or [])
        assert (point.time_from_start.sec, point.time_from_start.nanosec) == (0, 0)
        assert read_joint_trajectory(written + b"\xff" * 8).joint_names == joint_names  # slack after it is ignored


@settings(max_examples=200, deadline=None)
@given(stamp=stamps, frame=frames, joint_names=names, data=st.data())
def test_a_joint_state_reads_as_rclpy_wrote_it(stamp: tuple[int, int], frame: str, joint_names: list[str],
                                               data: st.DataObject) -> None:
    msg = JointState(name=joint_names, position=data.draw(values), velocity=data.draw(values),
                     effort=data.draw(values))
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = frame
    view = read_joint_state(serialize(msg))
    assert (view.header.stamp.sec, view.header.stamp.nanosec, view.header.frame_id) == (*stamp, frame)
    assert view.name == joint_names
    for got, want in ((view.position, msg.position), (view.velocity, msg.velocity), (view.effort, msg.effort)):
        _same(got, want)


@settings(max_examples=200, deadline=None)
@given(stamp=stamps, frame=frames, numbers=st.lists(doubles, min_size=37, max_size=37))
def test_an_imu_reads_as_rclpy_wrote_it(stamp: tuple[int, int], frame: str, numbers: list[float]) -> None:
    msg = Imu()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = frame
    q, v, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
    q.x, q.y, q.z, q.w = numbers[0:4]
    v.x, v.y, v.z = numbers[4:7]
    a.x, a.y, a.z = numbers[7:10]
    msg.orientation_covariance = numbers[10:19]
    msg.angular_velocity_covariance = numbers[19:28]
    msg.linear_acceleration_covariance = numbers[28:37]
    view = read_imu(serialize(msg))
    assert view.header.frame_id == frame and (view.header.stamp.sec, view.header.stamp.nanosec) == stamp
    _same(list(view.orientation) + list(view.angular_velocity) + list(view.linear_acceleration), numbers[:10])
    _same(np.concatenate([view.orientation_covariance, view.angular_velocity_covariance,
                          view.linear_acceleration_covariance]), numbers[10:])


@settings(max_examples=200, deadline=None)
@given(stamp=stamps, frame=frames, child=frames, numbers=st.lists(doubles, min_size=85, max_size=85))
def test_an_odometry_reads_as_rclpy_wrote_it(stamp: tuple[int, int], frame: str, child: str,
                                             numbers: list[float]) -> None:
    msg = Odometry()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id, msg.child_frame_id = frame, child
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    p.x, p.y, p.z = numbers[0:3]
    q.x, q.y, q.z, q.w = numbers[3:7]
    msg.pose.covariance = numbers[7:43]
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    lin.x, lin.y, lin.z = numbers[43:46]
    ang.x, ang.y, ang.z = numbers[46:49]
    msg.twist.covariance = numbers[49:85]
    view = read_odometry(serialize(msg))
    assert (view.header.frame_id, view.child_frame_id) == (frame, child)
    pose, twist = view.pose, view.twist
    _same([*pose.pose.position, *pose.pose.orientation], numbers[0:7])
    _same(pose.covariance, numbers[7:43])
    _same([*twist.twist.linear, *twist.twist.angular], numbers[43:49])
    _same(twist.covariance, numbers[49:85])


def _sample_trajectory() -> bytes:
    return bytes(serialize(_trajectory((5, 6), "base", ["a", "bb", "ccc"], [([1.0, 2.0, 3.0], [], [], [], (0, 0))])))


@settings(max_examples=400, deadline=None)
@given(cut=st.integers(0, 200), flips=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 255)), max_size=4))
def test_damaged_bytes_are_refused_or_read_as_rclpy_reads_them(cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(_sample_trajectory())
    for at, mask in flips:
        if at < len(data):
            data[at] ^= mask
    data = data[:cut] if cut < len(data) else data
    for reader, msg_type in ((read_joint_trajectory, JointTrajectory), (read_joint_state, JointState),
                             (read_imu, Imu), (read_odometry, Odometry)):
        try:
            view = reader(bytes(data))
        except CdrError:
            continue   # the node then asks rclpy, which decides
        expected = deserialize(bytes(data), msg_type)   # what we read, rclpy reads the same way
        assert view.header.frame_id == expected.header.frame_id
        assert view.header.stamp.sec == expected.header.stamp.sec


def test_other_encodings_and_truncation_are_refused() -> None:
    data = JointTrajectoryWriter("base").write(5, 6, ["a", "bb", "ccc"], np.array([1.0, 2.0, 3.0]))
    with pytest.raises(CdrError, match="encapsulation"):
        read_joint_trajectory(b"\x00\x00" + data[2:])           # big-endian CDR
    with pytest.raises(CdrError, match="truncated"):
        read_joint_trajectory(data[:-12])
    with pytest.raises(CdrError, match="serialized message expected"):
        read_joint_trajectory("not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="embedded NUL"):
        JointTrajectoryWriter().write(0, 0, ["a\x00b"], np.zeros(1))
    assert math.isnan(read_joint_state(bytes(serialize(JointState(position=[math.nan])))).position[0])


def test_repeated_joint_names_read_the_same_and_changed_ones_are_read_anew() -> None:
    writer = JointTrajectoryWriter()
    sequence = [["a", "bb"], ["a", "bb"], ["a", "bc"], ["a", "bb", "c"], ["a", "bb"], []]
    for joint_names in sequence:
        data = writer.write(1, 2, joint_names, np.arange(len(joint_names), dtype=float))
        view = read_joint_trajectory(data)
        assert view.joint_names == joint_names
        _same(view.points[0].positions, range(len(joint_names)))
        view.joint_names.append("mutated")   # the caller's list is its own
    state = JointState(name=["x", "y"], position=[1.0, 2.0])
    for _ in range(2):
        assert read_joint_state(bytes(serialize(state))).name == ["x", "y"]
