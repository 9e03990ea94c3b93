"""Batched intake on real DDS: every queued message is handled, in order, with its receive time."""

from __future__ import annotations

import time

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from std_msgs.msg import String

from ftrobot_guard.ros.batched_intake import BatchedIntake, with_depth
from ftrobot_guard.ros.qos_profiles import EVENTS, SENSOR_DATA
from ros_fixtures import SpinningExecutor, session_domain_id, wait_for_match, wait_until


def test_drain_takes_everything_queued_in_order(ros_context: Context, spinner: SpinningExecutor) -> None:
    intake = BatchedIntake("intake", ros_context)
    got: list[tuple[str, int]] = []
    raw: list[bytes] = []
    try:
        intake.subscribe(String, "words", with_depth(EVENTS, 500),
                         lambda m, info: got.append((m.data, info["received_timestamp"])))
        intake.subscribe(String, "words", with_depth(EVENTS, 500), lambda m, _info: raw.append(bytes(m)), raw=True)
        source = spinner.add(Node("source", context=ros_context))
        publisher = source.create_publisher(String, "words", EVENTS)
        wait_for_match(publisher)
        before = time.time_ns()
        for i in range(300):
            publisher.publish(String(data=f"w{i}"))
        handled = 0

        def all_taken() -> bool:
            nonlocal handled
            handled += intake.drain()
            return handled >= 600

        wait_until(all_taken, 10.0, "600 messages drained")
        assert [data for data, _ in got] == [f"w{i}" for i in range(300)]
        assert all(before <= stamp <= time.time_ns() for _, stamp in got)
        assert len(raw) == 300 and all(isinstance(b, bytes) and b for b in raw)
        assert intake.drain() == 0
    finally:
        intake.destroy()


def test_with_depth_keeps_policies_and_never_shrinks() -> None:
    deeper = with_depth(SENSOR_DATA, 500)
    assert deeper.depth == 500 and deeper.reliability == SENSOR_DATA.reliability
    assert deeper.durability == SENSOR_DATA.durability
    assert with_depth(with_depth(EVENTS, 2000), 10).depth == 2000


def test_a_failing_handler_is_reported_and_the_drain_goes_on(ros_context: Context, spinner: SpinningExecutor) -> None:
    errors: list[tuple[str, str]] = []
    intake = BatchedIntake("intake2", ros_context, on_error=lambda topic, exc: errors.append((topic, str(exc))))
    good: list[str] = []

    def handler(msg: String, _info: dict[str, object]) -> None:
        if msg.data == "bad":
            raise ValueError("cannot handle this one")
        good.append(msg.data)

    try:
        intake.subscribe(String, "mixed", with_depth(EVENTS, 50), handler)
        source = spinner.add(Node("source2", context=ros_context))
        publisher = source.create_publisher(String, "mixed", EVENTS)
        wait_for_match(publisher)
        for word in ("a", "bad", "b"):
            publisher.publish(String(data=word))
        count = [0]

        def drained() -> bool:
            count[0] += intake.drain()
            return count[0] >= 3

        wait_until(drained, 10.0, "three messages drained")
        assert good == ["a", "b"]
        assert errors == [("/mixed", "cannot handle this one")]
    finally:
        intake.destroy()


def test_the_intake_keeps_its_own_name_under_a_process_wide_node_remap(capfd: pytest.CaptureFixture[str]) -> None:
    """launch_ros starts a node with ``-r __node:=NAME -r __ns:=NS``; rcl applies such rules to every node
    in the process. The intake must still be ``NAME_intake`` (no two nodes named NAME, no rosout clash),
    in the owner's namespace, while the process's topic remaps still apply to its subscriptions."""
    context = Context()
    rclpy.init(args=["recorder", "--ros-args", "-r", "__node:=recorder", "-r", "__ns:=/launched",
                     "-r", "words:=renamed"], context=context, domain_id=session_domain_id())
    try:
        owner = Node("recorder_under_another_name", context=context)
        intake = BatchedIntake(f"{owner.get_name()}_intake", context, owner.get_namespace())
        try:
            assert (owner.get_name(), owner.get_namespace()) == ("recorder", "/launched")
            assert intake.node_name == "recorder_intake"
            assert intake.subscribe(String, "words", EVENTS, lambda _m, _i: None) == "/launched/renamed"
            wait_until(lambda: ("recorder_intake", "/launched") in owner.get_node_names_and_namespaces(), 10.0,
                       "the intake in the graph")
            assert sorted(owner.get_node_names_and_namespaces()).count(("recorder", "/launched")) == 1
        finally:
            intake.destroy()
            owner.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert "already registered" not in capfd.readouterr().err
