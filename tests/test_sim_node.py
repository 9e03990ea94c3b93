"""The humanoid_sim node on real DDS: mode service, a refused command, guard/alive timeout, a fault via
the service, lock-step /clock. Each test has its own rclpy Context; teardown joins the executor thread."""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pytest

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", "13")

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor  # noqa: E402
from rclpy.exceptions import InvalidHandle  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from ftrobot_guard.nodes.humanoid_sim_node import HumanoidSimNode, node_parameter_overrides  # noqa: E402
from ftrobot_guard.ros.node_parameters import NodeConfigurationError  # noqa: E402
from ftrobot_guard.ros.qos_profiles import COMMANDS, SENSOR_DATA  # noqa: E402
from ftrobot_msgs.msg import SimGroundTruth  # noqa: E402
from ftrobot_msgs.srv import InjectFault, SetActuationMode  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@dataclass
class Harness:
    context: Context
    sim: HumanoidSimNode
    client: Node
    executor: MultiThreadedExecutor
    thread: threading.Thread
    stop_beat: threading.Event = field(default_factory=threading.Event)
    beats: list[threading.Thread] = field(default_factory=list)
    truth: list[SimGroundTruth] = field(default_factory=list)

    def call_mode(self, mode: int) -> SetActuationMode.Response:
        client = self.client.create_client(SetActuationMode, "hw/set_actuation_mode")
        assert client.wait_for_service(timeout_sec=10.0)
        response = client.call(SetActuationMode.Request(mode=mode, reason="test"), timeout_sec=10.0)
        assert response is not None
        return response

    def inject(self, kind: str, onset: float, duration: float, parameters: str) -> InjectFault.Response:
        client = self.client.create_client(InjectFault, "sim/inject_fault")
        assert client.wait_for_service(timeout_sec=10.0)
        request = InjectFault.Request(kind=kind, onset=onset, duration=duration, parameters=parameters)
        response = client.call(request, timeout_sec=10.0)
        assert response is not None
        return response

    def start_heartbeat(self, period: float = 0.01, clock: Any = None) -> None:
        publisher = self.client.create_publisher(Header, "guard/alive", COMMANDS)
        clock = clock or self.client.get_clock()

        def beat() -> None:
            while not self.stop_beat.is_set():
                publisher.publish(Header(stamp=clock.now().to_msg()))
                time.sleep(period)

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        self.beats.append(thread)

    def stop_heartbeat(self) -> None:
        self.stop_beat.set()
        for thread in self.beats:
            thread.join(timeout=5.0)

    def close(self) -> None:
        self.stop_heartbeat()
        self.sim.close()  # physics thread first: nothing more is published
        self.executor.shutdown(timeout_sec=5.0)
        self.thread.join(timeout=5.0)
        self.sim.destroy_node()
        self.client.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)


@pytest.fixture
def start_sim() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def start(client_uses_sim_time: bool = False, **params: Any) -> Harness:
        context = Context()
        rclpy.init(context=context)
        namespace = f"/simtest_{uuid.uuid4().hex[:8]}"
        try:
            sim = HumanoidSimNode(
                context=context, namespace=namespace,
                parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
            )
        except BaseException:
            rclpy.shutdown(context=context)
            raise
        client = Node(
            "sim_test_client", context=context, namespace=namespace,
            parameter_overrides=[Parameter("use_sim_time", value=client_uses_sim_time)],
        )
        executor = MultiThreadedExecutor(num_threads=3, context=context)
        executor.add_node(sim)
        executor.add_node(client)
        def spin() -> None:
            try:
                executor.spin()
            except (ExternalShutdownException, InvalidHandle):
                pass  # teardown raced the last wait: nothing left to do

        thread = threading.Thread(target=spin, daemon=True)
        harness = Harness(context, sim, client, executor, thread)
        client.create_subscription(SimGroundTruth, "sim/ground_truth", harness.truth.append, COMMANDS)
        thread.start()
        made.append(harness)
        return harness

    yield start
    for harness in made:
        harness.close()


def test_overrides_for_the_cli_flags() -> None:
    assert node_parameter_overrides(lockstep=True, headless=False) == {"lockstep": True, "headless": False}


@pytest.mark.clause("4.5", "6.4c", "6.7c")
def test_actuation_mode_service_needs_a_live_guard_for_normal(start_sim: Callable[..., Harness]) -> None:
    h = start_sim()
    refused = h.call_mode(SetActuationMode.Request.MODE_NORMAL)
    assert not refused.success and "guard/alive" in refused.message
    assert refused.mode == SetActuationMode.Request.MODE_HOLD
    unknown = h.call_mode(9)
    assert not unknown.success and "unknown actuation mode 9" in unknown.message
    h.start_heartbeat()
    assert wait_until(lambda: h.sim.sim.guard_alive_fresh())
    accepted = h.call_mode(SetActuationMode.Request.MODE_NORMAL)
    assert accepted.success and accepted.mode == SetActuationMode.Request.MODE_NORMAL
    off = h.call_mode(SetActuationMode.Request.MODE_POWER_OFF)
    assert off.success and off.mode == SetActuationMode.Request.MODE_POWER_OFF
    assert wait_until(lambda: bool(h.truth) and h.truth[-1].actuation_mode_name == "POWER_OFF")


@pytest.mark.clause("5.2c")
def test_a_bad_joint_command_is_refused_and_nothing_applied(start_sim: Callable[..., Harness]) -> None:
    h = start_sim(require_guard_alive=False)
    assert h.call_mode(SetActuationMode.Request.MODE_NORMAL).success
    with h.sim.lock:
        before = h.sim.sim._command.target_position.copy()  # noqa: SLF001
    publisher = h.client.create_publisher(JointTrajectory, "hw/joint_command", COMMANDS)
    bad = JointTrajectory(joint_names=["left_elbow_joint", "tail_joint"])
    bad.points = [JointTrajectoryPoint(positions=[1.0, 0.0])]
    assert wait_until(lambda: h.sim.count_publishers(h.sim.resolve_topic_name("hw/joint_command")) >= 1)
    assert wait_until(lambda: (publisher.publish(bad), "tail_joint" in h.sim.last_refusal)[1], timeout=10.0)
    assert "unknown joint names" in h.sim.last_refusal
    with h.sim.lock:
        assert (h.sim.sim._command.target_position == before).all()  # noqa: SLF001


@pytest.mark.clause("6.7c")
def test_guard_alive_timeout_puts_the_robot_in_damping(start_sim: Callable[..., Harness]) -> None:
    h = start_sim()
    h.start_heartbeat(period=0.01)
    assert wait_until(lambda: h.sim.sim.guard_alive_fresh())
    assert h.call_mode(SetActuationMode.Request.MODE_NORMAL).success
    h.stop_heartbeat()
    assert wait_until(lambda: bool(h.truth) and h.truth[-1].actuation_mode_name == "DAMPING")
    with h.sim.lock:
        change = h.sim.sim.recorder.mode_changes[-1]
        last_alive = h.sim.sim.last_guard_alive_time
    assert change.source == "guard_alive_timeout"
    assert 0.1 < change.time - last_alive <= 0.1 + 0.01  # in sim time: the timeout plus a step or so


def test_fault_via_service_starts_a_rogue_publisher_and_bad_faults_are_refused(start_sim: Callable[..., Harness]) -> None:
    h = start_sim(require_guard_alive=False)
    topic = h.sim.resolve_topic_name("hw/joint_command")
    refused = h.inject("stuck_joint", 0.0, 0.0, '{"joint": "tail_joint"}')
    assert not refused.accepted and "joint" in refused.message and refused.fault_id == ""
    accepted = h.inject("rogue_publisher", 0.0, 0.0, '{"rate_hz": 50}')
    assert accepted.accepted and accepted.fault_id == "f1"
    assert wait_until(lambda: "rogue_controller" in h.client.get_node_names())
    assert wait_until(lambda: h.client.count_publishers(topic) >= 1)
    assert [i.node_name for i in h.client.get_publishers_info_by_topic(topic)] == ["rogue_controller"]
    assert wait_until(lambda: bool(h.truth) and "f1:rogue_publisher" in h.truth[-1].active_faults)
    assert h.inject("clear", 0.0, 0.0, "").accepted
    assert wait_until(lambda: h.client.count_publishers(topic) == 0)


def test_sensor_dropout_via_service_stops_joint_states(start_sim: Callable[..., Harness]) -> None:
    h = start_sim(require_guard_alive=False, joint_states_rate_hz=100.0)
    stamps: list[float] = []
    h.client.create_subscription(JointState, "joint_states", lambda m: stamps.append(m.header.stamp.sec + m.header.stamp.nanosec * 1e-9), SENSOR_DATA)
    assert wait_until(lambda: len(stamps) > 5)
    assert h.inject("sensor_dropout", 0.0, 0.0, '{"topic": "joint_states"}').accepted
    time.sleep(0.1)
    count = len(stamps)
    assert wait_until(lambda: bool(h.truth) and h.truth[-1].sim_time > h.truth[0].sim_time + 0.5)
    assert len(stamps) <= count + 1  # at most one sample already in flight
    assert h.inject("clear", 0.0, 0.0, "").accepted
    assert wait_until(lambda: len(stamps) > count + 5)


def test_lockstep_publishes_clock_and_waits_for_a_sim_time_guard(start_sim: Callable[..., Harness]) -> None:
    h = start_sim(client_uses_sim_time=True, lockstep=True, lockstep_guard_wait=0.3)
    clocks: list[float] = []
    h.client.create_subscription(Clock, "/clock", lambda m: clocks.append(m.clock.sec + m.clock.nanosec * 1e-9), 10)
    assert wait_until(lambda: len(clocks) > 10)
    assert all(b >= a for a, b in zip(clocks, clocks[1:]))
    assert wait_until(lambda: h.client.get_clock().now().nanoseconds > 0)
    h.start_heartbeat(period=0.002, clock=h.client.get_clock())  # stamped in sim time, as the guard does
    assert wait_until(lambda: h.sim.sim.guard_alive_fresh())
    assert h.call_mode(SetActuationMode.Request.MODE_NORMAL).success
    time.sleep(0.5)
    with h.sim.lock:
        assert h.sim.sim.mode.name == "NORMAL"  # the sim kept pace with the guard
        start = h.sim.sim.time
    h.stop_heartbeat()  # guard gone: after lockstep_guard_wait the sim runs on and the watchdog trips
    assert wait_until(lambda: h.sim.sim.mode.name == "DAMPING", timeout=15.0)
    with h.sim.lock:
        assert h.sim.sim.recorder.mode_changes[-1].source == "guard_alive_timeout"
        assert h.sim.sim.time > start


def test_bad_parameters_refuse_to_start() -> None:
    context = Context()
    rclpy.init(context=context)
    try:
        for params, reason in (
            ([Parameter("kp", value=[float("nan")])], "kp"),
            ([Parameter("initial_mode", value="NORMAL")], "initial_mode"),
            ([Parameter("kd", value=[1.0, 2.0])], "kd"),
        ):
            with pytest.raises(NodeConfigurationError, match=reason):
                HumanoidSimNode(context=context, parameter_overrides=params)
    finally:
        rclpy.shutdown(context=context)
