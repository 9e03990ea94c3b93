"""The humanoid_sim node on real DDS: mode service, a refused command, guard/alive timeout, a fault via
the service, lock-step /clock. Each test has its own rclpy Context, spun by the shared test harness
(tests/ros_fixtures.py); every wait is for a condition, with a deadline."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import rclpy
from ftrobot_msgs.msg import ActuationState, SimGroundTruth
from ftrobot_msgs.srv import InjectFault, SetActuationMode
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ftrobot_guard.nodes.humanoid_sim_node import HumanoidSimNode, node_parameter_overrides
from ftrobot_guard.ros.node_parameters import NodeConfigurationError
from ftrobot_guard.ros.qos_profiles import COMMANDS, LATCHED, SENSOR_DATA
from ros_fixtures import SpinningExecutor, session_domain_id, wait_until

pytestmark = pytest.mark.timeout(60)


def _seconds(stamp: Any) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


@dataclass
class Harness:
    context: Context
    sim: HumanoidSimNode
    client: Node
    spinner: SpinningExecutor
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
        self.spinner.shutdown()  # joins the spinning thread, then destroys the nodes
        if self.context.ok():
            rclpy.shutdown(context=self.context)


@pytest.fixture
def start_sim() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def start(client_uses_sim_time: bool = False, **params: Any) -> Harness:
        context = Context()
        rclpy.init(context=context, domain_id=session_domain_id())
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
        harness = Harness(context, sim, client, SpinningExecutor(context))
        client.create_subscription(SimGroundTruth, "sim/ground_truth", harness.truth.append, COMMANDS)
        harness.spinner.add(sim)
        harness.spinner.add(client)
        made.append(harness)
        return harness

    yield start
    for harness in made:
        harness.close()


def test_overrides_for_the_cli_flags() -> None:
    assert node_parameter_overrides(lockstep=True, headless=False) == {"lockstep": True}
    assert node_parameter_overrides(lockstep=False, headless=True) == {"headless": True}
    assert node_parameter_overrides(lockstep=False, headless=False) == {}  # the params file decides


@pytest.mark.clause("4.5", "6.4c", "6.7c")
def test_actuation_mode_service_needs_a_live_guard_for_normal(start_sim: Callable[..., Harness]) -> None:
    h = start_sim()
    refused = h.call_mode(SetActuationMode.Request.MODE_NORMAL)
    assert not refused.success and "guard/alive" in refused.message
    assert refused.mode == SetActuationMode.Request.MODE_HOLD
    unknown = h.call_mode(9)
    assert not unknown.success and "unknown actuation mode 9" in unknown.message
    h.start_heartbeat()
    wait_until(h.sim.sim.guard_alive_fresh, what="a fresh guard/alive")
    accepted = h.call_mode(SetActuationMode.Request.MODE_NORMAL)
    assert accepted.success and accepted.mode == SetActuationMode.Request.MODE_NORMAL
    off = h.call_mode(SetActuationMode.Request.MODE_POWER_OFF)
    assert off.success and off.mode == SetActuationMode.Request.MODE_POWER_OFF
    wait_until(lambda: bool(h.truth) and h.truth[-1].actuation_mode_name == "POWER_OFF", what="POWER_OFF reported")


@pytest.mark.clause("5.2c")
def test_a_bad_joint_command_is_refused_and_nothing_applied(start_sim: Callable[..., Harness]) -> None:
    h = start_sim(require_guard_alive=False)
    assert h.call_mode(SetActuationMode.Request.MODE_NORMAL).success
    with h.sim.lock:
        before = h.sim.sim._command.target_position.copy()
    publisher = h.client.create_publisher(JointTrajectory, "hw/joint_command", COMMANDS)
    bad = JointTrajectory(joint_names=["left_elbow_joint", "tail_joint"])
    bad.points = [JointTrajectoryPoint(positions=[1.0, 0.0])]
    wait_until(lambda: h.sim.count_publishers(h.sim.resolve_topic_name("hw/joint_command")) >= 1,
               what="the command publisher matched")

    def refused() -> bool:
        publisher.publish(bad)
        return "tail_joint" in h.sim.last_refusal

    wait_until(refused, what="the bad command refused")
    assert "unknown joint names" in h.sim.last_refusal
    with h.sim.lock:
        assert (h.sim.sim._command.target_position == before).all()


@pytest.mark.clause("6.7c")
def test_guard_alive_timeout_puts_the_robot_in_damping(start_sim: Callable[..., Harness]) -> None:
    """...and hw/actuation_state says so (latched: a late subscriber gets the newest), with its source."""
    h = start_sim()
    announced: list[ActuationState] = []
    h.client.create_subscription(ActuationState, "hw/actuation_state", announced.append, LATCHED)
    wait_until(lambda: bool(announced), what="the start state, latched")
    assert (announced[0].mode_name, announced[0].source, announced[0].changes) == ("HOLD", "start", 0)
    h.start_heartbeat(period=0.01)
    wait_until(h.sim.sim.guard_alive_fresh, what="a fresh guard/alive")
    assert h.call_mode(SetActuationMode.Request.MODE_NORMAL).success
    wait_until(lambda: announced[-1].mode_name == "NORMAL", what="NORMAL announced")
    assert (announced[-1].source, announced[-1].changes, announced[-1].reason) == ("request", 1, "test")
    h.stop_heartbeat()
    wait_until(lambda: bool(h.truth) and h.truth[-1].actuation_mode_name == "DAMPING", what="DAMPING reported")
    wait_until(lambda: announced[-1].mode_name == "DAMPING", what="DAMPING announced")
    assert (announced[-1].source, announced[-1].changes) == ("guard_alive_timeout", 2)
    assert "no guard/alive" in announced[-1].reason
    late: list[ActuationState] = []
    h.client.create_subscription(ActuationState, "hw/actuation_state", late.append, LATCHED)
    wait_until(lambda: bool(late), what="the latched state for a late subscriber")
    assert [(m.mode_name, m.changes) for m in late] == [("DAMPING", 2)]
    with h.sim.lock:
        change = h.sim.sim.recorder.mode_changes[-1]
        last_alive = h.sim.sim.last_guard_alive_time
    assert change.source == "guard_alive_timeout"
    timeout = h.sim.sim.config.guard_alive_timeout   # config/sim.yaml: 0.09 s
    assert timeout == pytest.approx(0.09)
    assert timeout - 1e-9 < change.time - last_alive <= timeout + 0.01  # in sim time: the timeout plus a step or so


@pytest.mark.clause("6.7c")
def test_the_watchdog_takes_guard_alive_itself_not_through_the_nodes_executor(
        start_sim: Callable[..., Harness]) -> None:
    h = start_sim()
    h.start_heartbeat(period=0.01)
    wait_until(h.sim.sim.guard_alive_fresh, what="a fresh guard/alive")
    assert h.call_mode(SetActuationMode.Request.MODE_NORMAL).success
    h.spinner.spinning.remove_node(h.sim)   # the node's executor stalls: no callback of the simulator runs
    time.sleep(0.5)                          # five watchdog periods
    with h.sim.lock:
        assert h.sim.sim.mode.name == "NORMAL", h.sim.sim.recorder.mode_changes[-1:]
        stalled_at = h.sim.sim.time
    h.stop_heartbeat()                       # the guard dies while the executor is still stalled
    wait_until(lambda: h.sim.sim.mode.name == "DAMPING", what="DAMPING without the executor")
    with h.sim.lock:
        change = h.sim.sim.recorder.mode_changes[-1]
    assert change.source == "guard_alive_timeout" and change.time > stalled_at
    h.spinner.spinning.add_node(h.sim)


def test_fault_via_service_starts_a_rogue_publisher_and_bad_faults_are_refused(
    start_sim: Callable[..., Harness]
) -> None:
    h = start_sim(require_guard_alive=False)
    topic = h.sim.resolve_topic_name("hw/joint_command")
    refused = h.inject("stuck_joint", 0.0, 0.0, '{"joint": "tail_joint"}')
    assert not refused.accepted and "joint" in refused.message and refused.fault_id == ""
    accepted = h.inject("rogue_publisher", 0.0, 0.0, '{"rate_hz": 50}')
    assert accepted.accepted and accepted.fault_id == "f1"
    wait_until(lambda: "rogue_controller" in h.client.get_node_names(), what="the rogue_controller node")
    wait_until(lambda: h.client.count_publishers(topic) >= 1, what="the rogue publisher")
    assert [i.node_name for i in h.client.get_publishers_info_by_topic(topic)] == ["rogue_controller"]
    wait_until(lambda: bool(h.truth) and "f1:rogue_publisher" in h.truth[-1].active_faults,
               what="the rogue fault in the ground truth")
    assert h.inject("clear", 0.0, 0.0, "").accepted
    wait_until(lambda: h.client.count_publishers(topic) == 0, what="the rogue publisher gone")


def test_sensor_dropout_via_service_stops_joint_states(start_sim: Callable[..., Harness]) -> None:
    h = start_sim(require_guard_alive=False, joint_states_rate_hz=100.0)
    stamps: list[float] = []
    h.client.create_subscription(JointState, "joint_states", lambda m: stamps.append(_seconds(m.header.stamp)),
                                 SENSOR_DATA)
    wait_until(lambda: len(stamps) > 5, what="joint_states flowing")
    dropout = h.inject("sensor_dropout", 0.0, 0.0, '{"topic": "joint_states"}')
    assert dropout.accepted
    active = f"{dropout.fault_id}:sensor_dropout"

    def first_truth_with_dropout() -> SimGroundTruth | None:
        return next((t for t in list(h.truth) if active in t.active_faults), None)

    wait_until(lambda: first_truth_with_dropout() is not None, what="the dropout in the ground truth")
    first = first_truth_with_dropout()
    assert first is not None
    wait_until(lambda: h.truth[-1].sim_time > first.sim_time + 0.5, what="0.5 s of sim time with the dropout")
    # Every step stamps its outputs with one clock reading: from the step the dropout shows, no joint_states.
    assert [s for s in list(stamps) if s >= _seconds(first.header.stamp)] == []
    count = len(stamps)
    assert h.inject("clear", 0.0, 0.0, "").accepted
    wait_until(lambda: len(stamps) > count + 5, what="joint_states flowing again")


def test_lockstep_publishes_clock_and_waits_for_a_sim_time_guard(start_sim: Callable[..., Harness]) -> None:
    h = start_sim(client_uses_sim_time=True, lockstep=True, lockstep_guard_wait=0.3)
    clocks: list[float] = []
    h.client.create_subscription(Clock, "/clock", lambda m: clocks.append(m.clock.sec + m.clock.nanosec * 1e-9), 10)
    wait_until(lambda: len(clocks) > 10, what="/clock")
    assert all(b >= a for a, b in itertools.pairwise(clocks))
    wait_until(lambda: h.client.get_clock().now().nanoseconds > 0, what="sim time on the client")
    h.start_heartbeat(period=0.002, clock=h.client.get_clock())  # stamped in sim time, as the guard does
    wait_until(h.sim.sim.guard_alive_fresh, what="a fresh guard/alive")
    assert h.call_mode(SetActuationMode.Request.MODE_NORMAL).success
    with h.sim.lock:
        normal_at = h.sim.sim.time

    def sim_time() -> float:
        with h.sim.lock:
            return h.sim.sim.time

    wait_until(lambda: sim_time() > normal_at + 0.5, what="0.5 s of sim time in lock-step with the guard")
    with h.sim.lock:
        assert h.sim.sim.mode.name == "NORMAL"  # the sim kept pace with the guard: no watchdog trip
        start = h.sim.sim.time
    h.stop_heartbeat()  # guard gone: after lockstep_guard_wait the sim runs on and the watchdog trips
    wait_until(lambda: h.sim.sim.mode.name == "DAMPING", 15.0, "DAMPING after the guard went silent")
    with h.sim.lock:
        assert h.sim.sim.recorder.mode_changes[-1].source == "guard_alive_timeout"
        assert h.sim.sim.time > start


def test_bad_parameters_refuse_to_start() -> None:
    context = Context()
    rclpy.init(context=context, domain_id=session_domain_id())
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
