"""The guard node on real DDS against the simulated G1 (its own process): it leaves BOOT only with a
signed envelope, forwards, clamps and refuses commands, obeys `estop` at once, and stops the robot when
someone else publishes on hw/joint_command."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ftrobot_guard.ros.qos_profiles import COMMANDS
from guard_harness import GuardStack, wait_standing_in_normal
from ros_fixtures import wait_until

pytestmark = pytest.mark.timeout(150)


def _command(stack: GuardStack, names: list[str], positions: list[float]) -> JointTrajectory:
    msg = JointTrajectory()
    msg.header.stamp = stack.observer.node.get_clock().now().to_msg()
    msg.joint_names = names
    msg.points = [JointTrajectoryPoint(positions=positions)]
    return msg


@pytest.mark.clause("6.7a")
def test_an_unsigned_envelope_keeps_the_robot_in_boot(guard_stack: Callable[..., GuardStack]) -> None:
    stack = guard_stack(with_sim=False, sign=False)
    wait_until(lambda: bool(stack.observer.states), 20.0, "a latched safety_state")
    state = stack.observer.states[-1]
    assert state.mode_name == "BOOT"
    assert "UNSIGNED" in state.cause or "unsigned" in state.cause, state.cause
    publisher = stack.observer.node.create_publisher(JointTrajectory, "guard/in/joint_command", COMMANDS)
    publisher.publish(_command(stack, ["left_elbow_joint"], [0.3]))
    wait_until(lambda: stack.guard.core.output.mode.name == "BOOT", 2.0, "BOOT")
    assert stack.observer.forwarded == []


@pytest.mark.clause("6.7a", "6.7b", "6.4c")
def test_commands_are_forwarded_clamped_or_refused_and_estop_stops_at_once(
        guard_stack: Callable[..., GuardStack]) -> None:
    stack = guard_stack()
    wait_standing_in_normal(stack)
    observer = stack.observer
    publisher = observer.node.create_publisher(JointTrajectory, "guard/in/joint_command", COMMANDS)
    elbow = stack.guard.core.envelope.joints.index["left_elbow_joint"]  # type: ignore[union-attr]
    anchor = stack.guard.core.gate.anchor_positions  # type: ignore[union-attr]
    assert anchor is not None
    start = float(anchor[elbow])

    # inside the envelope: forwarded as sent
    publisher.publish(_command(stack, ["left_elbow_joint"], [start + 0.001]))
    wait_until(lambda: bool(observer.forwarded), 10.0, "a forwarded command on hw/joint_command")
    assert observer.forwarded[-1].points[0].positions[0] == pytest.approx(start + 0.001)
    # NaN: refused, with a recorded reason, nothing forwarded
    count = len(observer.forwarded)
    publisher.publish(_command(stack, ["left_elbow_joint"], [math.nan]))
    wait_until(lambda: bool(observer.raised("command_refused")), 10.0, "the refusal recorded as an anomaly")
    assert len(observer.forwarded) == count
    assert "finite" in observer.raised("command_refused")[-1].description or \
        "NaN" in observer.raised("command_refused")[-1].description
    # a step far beyond the velocity limit: shortened (clamped) or refused, never forwarded as sent
    publisher.publish(_command(stack, ["left_elbow_joint"], [start + 0.5]))
    wait_until(lambda: bool(observer.raised("command_clamped")) or len(observer.raised("command_refused")) > 1, 10.0,
               "the over-speed step clamped or refused")
    assert all(abs(m.points[0].positions[0] - start) < 0.5 for m in observer.forwarded)

    # estop: stops at once, the hardware holds, nothing more is forwarded
    estop = observer.node.create_publisher(Bool, "estop", COMMANDS)
    estop.publish(Bool(data=True))
    stack.wait_mode("ESTOP", 10.0)
    wait_until(lambda: observer.actuation() in ("HOLD", "DAMPING", "NORMAL"), 10.0, "the hardware answering")
    count = len(observer.forwarded)
    publisher.publish(_command(stack, ["left_elbow_joint"], [start]))
    estop.publish(Bool(data=False))  # releasing the button is not a RESET
    wait_until(lambda: stack.guard.core.output.mode.name == "ESTOP" and observer.states[-1].latched, 5.0,
               "ESTOP latched")
    assert stack.guard.core.output.mode.name == "ESTOP"
    assert all(m.points[0].positions[0] == pytest.approx(start, abs=0.5) for m in observer.forwarded[count:])


@pytest.mark.clause("6.7b", "5.3")
def test_a_rogue_publisher_on_the_hardware_topic_stops_the_robot(guard_stack: Callable[..., GuardStack]) -> None:
    stack = guard_stack()
    wait_standing_in_normal(stack)
    rogue = stack.observer.node.create_publisher(JointTrajectory, "hw/joint_command", COMMANDS)
    wait_until(lambda: bool(stack.observer.raised("rogue_hw_publisher")), 10.0, "the rogue publisher detected")
    report = stack.observer.raised("rogue_hw_publisher")[-1]
    assert "test_controller" in report.subject or "test_controller" in report.description
    stack.wait_mode("SAFE_STOP", 10.0)
    stack.observer.node.destroy_publisher(rogue)
