"""The safety core in the demo: the guard drives the simulated G1 and stops it, each effect checked.

A node of the demo, ``demo_controller`` (on the guard's input allowlist), plays the robot's own
controller: it moves the arms through ``guard/in/joint_command``, sends a command outside the envelope,
sends guardian commands (cli/demo_guardians.py), and asks the simulator for faults (a rogue publisher on
``hw/joint_command``, a trip). It watches ``safety_state``, ``anomalies``, ``hw/joint_command``,
``guardian/result`` and the simulator's ground truth; every ``ok`` is a condition on those.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from ftrobot_msgs.msg import Anomaly, GuardianCommand, GuardianCommandResult, SafetyState, SimGroundTruth
from ftrobot_msgs.srv import InjectFault
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ftrobot_guard.cli.demo_checklist import Checklist, StepFailed, wait_for
from ftrobot_guard.ros.batched_intake import BatchedIntake, with_depth
from ftrobot_guard.ros.qos_profiles import COMMANDS, EVENTS, GUARDIAN_COMMANDS, GUARDIAN_RESULTS, LATCHED

CONTROLLER_NODE = "demo_controller"
ARM_JOINTS = ("left_shoulder_pitch_joint", "left_elbow_joint", "right_shoulder_pitch_joint", "right_elbow_joint")
ARM_AMPLITUDE = 0.25       # rad
ARM_FREQUENCY = 0.25       # Hz (peak 0.39 rad/s: a 0.3 s stall of the simulator on a busy 2-core machine stays
                           # inside the tracking detector's 0.2 rad; at 0.5 Hz it did not, twice in 8 runs)
COMMAND_RATE_HZ = 50.0
ARM_MOTION_S = 4.0
LOWERING_DEADLINE_S = 60.0  # the lowering takes ~25-30 s of motion
TUCK_MIN_COMMANDS = 20      # the tuck streams 1.5 s at the guard's 100 Hz (~150); a forward trip is never sideways


@dataclass
class _Seen:
    states: list[SafetyState] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    truth: list[SimGroundTruth] = field(default_factory=list)
    forwarded: list[float] = field(default_factory=list)   # time.monotonic() of each hw/joint_command
    joints: JointState | None = None
    gate: dict[str, str] = field(default_factory=dict)     # the guard's latest /diagnostics gate values
    gate_at: float = 0.0                                   # time.monotonic() when they arrived
    results: list[GuardianCommandResult] = field(default_factory=list)   # guardian/result


class GuardDemo:
    """The demo's controller node and what it saw; one per demo run (the processes come and go)."""

    def __init__(self, namespace: str, domain_id: int) -> None:
        self._context = Context()
        rclpy.init(context=self._context, domain_id=domain_id)
        self.node = Node(CONTROLLER_NODE, context=self._context, namespace=namespace)
        self.seen = _Seen()
        node, seen = self.node, self.seen
        node.create_subscription(SafetyState, "safety_state", seen.states.append, LATCHED)
        node.create_subscription(Anomaly, "anomalies", seen.anomalies.append, EVENTS)
        node.create_subscription(SimGroundTruth, "sim/ground_truth", seen.truth.append, COMMANDS)
        node.create_subscription(JointTrajectory, "hw/joint_command",
                                 lambda _m: seen.forwarded.append(time.monotonic()), COMMANDS)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        node.create_subscription(GuardianCommandResult, "guardian/result", seen.results.append, GUARDIAN_RESULTS)
        self._guardian = node.create_publisher(GuardianCommand, "guardian/command", GUARDIAN_COMMANDS)
        self._joints = BatchedIntake(f"{CONTROLLER_NODE}_intake", self._context, namespace)
        self._joints.subscribe(JointState, "joint_states", with_depth(qos_profile_sensor_data, 1),
                               lambda msg, _info: self._on_joints(msg))
        self._commands = node.create_publisher(JointTrajectory, "guard/in/joint_command", COMMANDS)
        self._faults = node.create_client(InjectFault, "sim/inject_fault")
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self._executor.spin_once(timeout_sec=0.05)

    def _on_joints(self, msg: JointState) -> None:
        self.seen.joints = msg

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f"{self.node.get_namespace()}/guard: gate":
                self.seen.gate = {kv.key: kv.value for kv in status.values}
                self.seen.gate["message"] = status.message
                self.seen.gate_at = time.monotonic()

    def gate_counts(self, after: float, deadline_s: float = 5.0) -> dict[str, str]:
        """The guard's own gate counters (its /diagnostics), from a report made after ``after``."""
        wait_for(lambda: self.seen.gate_at > after, deadline_s, "the guard's gate diagnostics")
        return dict(self.seen.gate)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._executor.shutdown(timeout_sec=2.0)
        self._joints.destroy()
        self.node.destroy_node()
        rclpy.shutdown(context=self._context)

    # ------------------------------------------------------------------ what was seen

    def forget(self) -> None:
        """A new phase: the old process's messages no longer count."""
        self.seen.states.clear()
        self.seen.anomalies.clear()
        self.seen.truth.clear()
        self.seen.forwarded.clear()
        self.seen.joints = None

    def mode(self) -> str:
        return self.seen.states[-1].mode_name if self.seen.states else "none"

    def state(self) -> SafetyState | None:
        return self.seen.states[-1] if self.seen.states else None

    def raised(self, kind: str) -> list[Anomaly]:
        return [a for a in list(self.seen.anomalies) if a.active and a.kind == kind]

    def raised_now(self, kind: str) -> bool:
        """True while the latest anomaly of ``kind`` is a raise (not yet cleared)."""
        latest = [a for a in list(self.seen.anomalies) if a.kind == kind]
        return bool(latest) and latest[-1].active

    def truth(self) -> SimGroundTruth | None:
        return self.seen.truth[-1] if self.seen.truth else None

    def joint_positions(self, names: tuple[str, ...], deadline_s: float = 5.0) -> list[float] | None:
        """The measured positions of ``names`` from the newest joint_states message. The subscription is made
        once, at start, and taken in a batch only when asked (ros/batched_intake.py): a 500 Hz callback would
        cost this process a good part of a core, and a subscription made mid-run stalled the simulator's
        streams to the guard for a quarter of a second (measured)."""
        self.seen.joints = None
        self._joints.drain()
        try:
            wait_for(lambda: self._joints.drain() >= 0 and self.seen.joints is not None, deadline_s,
                     "a joint_states message")
        except StepFailed:
            return None
        msg: JointState | None = self.seen.joints
        if msg is None:
            return None
        index = {name: i for i, name in enumerate(msg.name)}
        if not all(n in index for n in names):
            return None
        return [float(msg.position[index[n]]) for n in names]

    # ------------------------------------------------------------------ actions

    def send(self, names: tuple[str, ...], positions: list[float]) -> None:
        msg = JointTrajectory()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.joint_names = list(names)
        msg.points = [JointTrajectoryPoint(positions=positions)]
        self._commands.publish(msg)

    def move_arms(self, seconds: float, origin: list[float]) -> int:
        """Swing both arms around ``origin`` (smooth sine from rest) for ``seconds``; returns commands sent."""
        start, sent = time.monotonic(), 0
        while (elapsed := time.monotonic() - start) < seconds:
            swing = ARM_AMPLITUDE * math.sin(2.0 * math.pi * ARM_FREQUENCY * elapsed)
            self.send(ARM_JOINTS, [origin[0] + swing, origin[1] + swing, origin[2] - swing, origin[3] + swing])
            sent += 1
            time.sleep(1.0 / COMMAND_RATE_HZ)
        return sent

    def guardian_command(self, msg: GuardianCommand, deadline_s: float = 10.0) -> GuardianCommandResult:
        """Publish a (signed, forged or replayed) guardian command and wait for the guard's result for its nonce."""
        seen = len(self.seen.results)
        self._guardian.publish(msg)
        nonce = bytes(msg.nonce)

        def result() -> GuardianCommandResult | None:
            return next((r for r in list(self.seen.results)[seen:] if bytes(r.nonce) == nonce), None)

        wait_for(lambda: result() is not None, deadline_s, "the guard's result on guardian/result")
        found = result()
        assert found is not None
        return found

    def inject(self, kind: str, parameters: str, duration: float = 0.0) -> tuple[bool, str]:
        if not self._faults.wait_for_service(timeout_sec=10.0):
            return False, "sim/inject_fault not available"
        future = self._faults.call_async(InjectFault.Request(kind=kind, onset=0.0, duration=duration,
                                                             parameters=parameters))
        wait_for(future.done, 10.0, f"the {kind} fault to be accepted")
        reply: Any = future.result()
        return bool(reply and reply.accepted), str(reply.message if reply else "no reply")


def wait_normal(demo: GuardDemo, checks: Checklist, deadline_s: float, processes: tuple[Any, ...]) -> bool:
    return checks.wait(lambda: demo.mode() == "NORMAL", deadline_s,
                       "the guard verified the signed envelope and took the robot from BOOT to NORMAL", processes)


def _count(values: dict[str, str], key: str) -> int:
    try:
        return int(values.get(key, "0"))
    except ValueError:
        return 0


def arms_step(demo: GuardDemo, checks: Checklist) -> None:
    origin = demo.joint_positions(ARM_JOINTS)
    if origin is None:
        checks.check(False, "arms swung: no joint_states to start from")
        return
    before = demo.gate_counts(time.monotonic() - 2.0)
    sent = demo.move_arms(ARM_MOTION_S, origin)
    after = demo.gate_counts(time.monotonic())
    forwarded = sum(_count(after, f"joint_command {k}") - _count(before, f"joint_command {k}")
                    for k in ("accepted", "clamped"))
    refused = _count(after, "joint_command refused") - _count(before, "joint_command refused")
    checks.check(forwarded >= 0.9 * sent and demo.mode() == "NORMAL",
                 f"arms swung {ARM_AMPLITUDE} rad at {ARM_FREQUENCY} Hz inside the envelope: the gate forwarded "
                 f"{forwarded} of {sent} commands to hw/joint_command (its own count), still NORMAL",
                 f"{refused} refused: {after.get('message', '')}" if refused else "")


def outside_envelope_step(demo: GuardDemo, checks: Checklist) -> None:
    origin = demo.joint_positions(("left_elbow_joint",))
    if origin is None:
        checks.check(False, "an elbow target beyond the soft limit: no joint_states to start from")
        return
    # 2.08 rad: inside the elbow's hard range (2.094) but beyond its soft limit (2.044). The controller
    # moves there at 1 rad/s and stays half a second: the gate clamps every command at the soft limit.
    target = 2.08
    steps = max(1, int(abs(target - origin[0]) / 1.0 * COMMAND_RATE_HZ))
    for step in range(steps + int(COMMAND_RATE_HZ * 0.5)):
        demo.send(("left_elbow_joint",), [origin[0] + (target - origin[0]) * min(1.0, (step + 1) / steps)])
        time.sleep(1.0 / COMMAND_RATE_HZ)
    checks.wait(lambda: bool(demo.raised("command_clamped")), 5.0,
                "an elbow target beyond the soft limit is clamped, and the clamp is recorded (anomaly command_clamped)")
    clamp = demo.raised("command_clamped")
    if clamp:
        print(f"    {clamp[-1].description}")
    sent_at = time.monotonic()
    demo.send(("left_elbow_joint",), [math.nan])

    def nan_refused() -> bool:
        return any("finite" in a.description or "NaN" in a.description for a in demo.raised("command_refused"))

    checks.wait(lambda: nan_refused() and demo.mode() == "NORMAL", 5.0,
                "a NaN command is refused with its reason (anomaly command_refused), the robot stays NORMAL")
    refusal = next((a for a in reversed(demo.raised("command_refused")) if "finite" in a.description
                    or "NaN" in a.description), None)
    if refusal is not None:
        print(f"    {refusal.description}")
    gate = demo.gate_counts(sent_at)
    print(f"    the gate so far: {', '.join(f'{k} {v}' for k, v in gate.items() if k.startswith('joint_command'))}")
    # back to where the arm was, at 1 rad/s (the gate would shorten a jump anyway)
    for step in range(steps):
        demo.send(("left_elbow_joint",), [target + (origin[0] - target) * (step + 1) / steps])
        time.sleep(1.0 / COMMAND_RATE_HZ)


def lowering_checks(demo: GuardDemo, checks: Checklist, processes: tuple[Any, ...], stopped: float) -> None:
    """After an ESTOP (stop category 1) seen at ``stopped``: the hardware holds, the guard lowers the robot."""
    time.sleep(0.3)
    after = [t for t in demo.seen.forwarded if t > stopped + 0.05]
    truth = demo.truth()
    checks.check(truth is not None and truth.actuation_mode_name in ("HOLD", "NORMAL"),
                 "stop category 1: the hardware holds, then the guard lowers the robot to rest with its own commands",
                 f"hardware {truth.actuation_mode_name if truth else 'unknown'}, {len(after)} lowering commands so far")
    demo.send(("left_elbow_joint",), [0.5])   # the controller keeps talking: nothing of it moves the robot
    checks.wait(lambda: (t := demo.truth()) is not None and t.actuation_mode_name in ("DAMPING", "POWER_OFF"),
                LOWERING_DEADLINE_S, "lowered to rest, then DAMPING and motor power off", processes)
    truth = demo.truth()
    if truth is not None:
        print(f"    pelvis {truth.pelvis_height:.2f} m, tilt {truth.tilt:.2f} rad, peak impact speed "
              f"{truth.peak_impact_speed:.2f} m/s (a bare power cut from standing: ~3 m/s)")


def rogue_step(demo: GuardDemo, checks: Checklist, processes: tuple[Any, ...], clear: bool = True) -> None:
    accepted, message = demo.inject("rogue_publisher", "{}")
    checks.check(accepted, f"fault injected: a rogue node publishes on hw/joint_command ({message})")
    checks.wait(lambda: bool(demo.raised("rogue_hw_publisher")), 5.0,
                "the rogue publisher is found in the ROS graph (anomaly rogue_hw_publisher)", processes)
    rogue = demo.raised("rogue_hw_publisher")
    if rogue:
        print(f"    {rogue[-1].description}")
    checks.wait(lambda: demo.mode() == "SAFE_STOP" and (t := demo.truth()) is not None
                and t.actuation_mode_name == "HOLD", 5.0,
                "the robot is stopped (SAFE_STOP) and holds its posture: the rogue commands move nothing", processes)
    if clear:
        demo.inject("clear", "{}")


def trip_step(demo: GuardDemo, checks: Checklist, processes: tuple[Any, ...]) -> None:
    accepted, message = demo.inject("trip", '{"direction": "forward"}', duration=0.2)
    checks.check(accepted, f"fault injected: the robot trips forward ({message})")
    checks.wait(lambda: bool(demo.raised("fall_under_way")), 5.0, "the fall is detected while under way", processes)
    seen_at = time.monotonic()
    fall = demo.raised("fall_under_way")
    if fall:
        print(f"    {fall[-1].description}")
    checks.wait(lambda: (t := demo.truth()) is not None and t.actuation_mode_name in ("DAMPING", "POWER_OFF"), 5.0,
                "fall-safe: a protective tuck through the gate, then DAMPING (POWER_DOWN, action TUCK)", processes)
    tuck = [t for t in list(demo.seen.forwarded) if t > seen_at]
    span = tuck[-1] - tuck[0] if tuck else 0.0
    checks.check(len(tuck) >= TUCK_MIN_COMMANDS, "the tuck was the guard's own joint commands, streamed while falling",
                 f"{len(tuck)} on hw/joint_command after the fall was seen, over {span:.2f} s")
    wait_for(lambda: (t := demo.truth()) is not None and t.fallen, 10.0, "the robot on the floor")
    time.sleep(1.0)
    truth = demo.truth()
    if truth is not None:
        print(f"    on the floor: peak impact speed {truth.peak_impact_speed:.2f} m/s")


Step = Callable[[GuardDemo, Checklist], None]
