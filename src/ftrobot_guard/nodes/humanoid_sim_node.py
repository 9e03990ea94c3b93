"""Simulated Unitree G1 behind the hardware contract (docs/design.md, § Hardware contract, § Topics and QoS).

Publishes ``joint_states``, ``imu``, ``odom`` (sensor QoS), ``actuator_temperatures``, ``battery``,
``sim/ground_truth``, ``hw/actuation_state`` (latched: at start and on every change of actuation mode)
and, in lock-step mode, ``/clock``. Takes ``hw/joint_command``, ``hw/cmd_vel``
and ``guard/alive``; serves ``hw/set_actuation_mode`` and ``sim/inject_fault``.

A dedicated physics thread steps :class:`HumanoidSim` (2 ms steps): paced to wall time in real-time
mode (sim/pacing.py), as fast as possible in lock-step mode, waiting for the guard's heartbeat to keep
up (sim/lockstep_wait.py). Which outputs are due at a step (sim/publication_schedule.py) and when a
delayed one is released (sim/delay_queue.py) is decided without ROS; this node only adapts them.
Callbacks and the physics thread share the simulator under one lock: every read or change of its
state, mode changes included, happens while holding it. The ``rogue_publisher`` fault runs a second
node, ``rogue_controller``, on the same context that publishes on ``hw/joint_command``.
Every parameter is read-only (ros/node_parameters.py): the simulator reads them once, at start.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from ftrobot_msgs.msg import ActuationState, JointTemperatures, SimGroundTruth
from ftrobot_msgs.srv import InjectFault, SetActuationMode
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import BatteryState, Imu, JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ftrobot_guard.hardware.actuation_modes import STOP_MODES, ActuationMode
from ftrobot_guard.hardware.joint_commands import KD_MAX, KP_MAX, CommandRefused, validate_gains
from ftrobot_guard.ros.batched_intake import BatchedIntake
from ftrobot_guard.ros.node_parameters import (
    NodeConfigurationError,
    declare_bool,
    declare_double,
    declare_double_list,
    declare_int,
    declare_string,
)
from ftrobot_guard.ros.qos_profiles import COMMANDS, LATCHED, SENSOR_DATA
from ftrobot_guard.sim.battery_model import BatteryParameters
from ftrobot_guard.sim.delay_queue import DelayQueue
from ftrobot_guard.sim.faults import FaultKind
from ftrobot_guard.sim.g1_model import JOINT_COUNT, ModelLoadError
from ftrobot_guard.sim.ground_truth import FallCriteria, ModeChange
from ftrobot_guard.sim.humanoid_sim import HumanoidSim, RogueCommand, SimConfig
from ftrobot_guard.sim.lockstep_wait import GuardHeartbeatState, LockstepGuardWait
from ftrobot_guard.sim.pacing import RealTimeFactorWindow, RealTimePacer
from ftrobot_guard.sim.publication_schedule import PublicationSchedule
from ftrobot_guard.sim.thermal_model import ThermalParameters

# guard/alive is taken from reliable and best-effort publishers alike.
GUARD_ALIVE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
CLOCK_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
# The physics thread releases the GIL inside every mj_step; with Python's default 5 ms switch interval a
# busy callback thread could keep it for longer than two physics steps. 0.5 ms keeps the loop on time.
GIL_SWITCH_INTERVAL_S = 0.0005


def node_parameter_overrides(lockstep: bool, headless: bool) -> dict[str, object]:
    """Parameters for `ftrobot up sim [--lockstep] [--headless]`: a flag given turns its setting on; without
    it the params file decides (``lockstep: true`` in a params file is not switched off by a missing flag)."""
    overrides: dict[str, object] = {}
    if lockstep:
        overrides["lockstep"] = True
    if headless:
        overrides["headless"] = True
    return overrides


def _time_msg(seconds: float) -> TimeMsg:
    whole = math.floor(seconds)
    return TimeMsg(sec=int(whole), nanosec=min(999_999_999, round((seconds - whole) * 1e9)))


class HumanoidSimNode(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("humanoid_sim", **node_kwargs)
        self._lockstep = declare_bool(
            self, "lockstep", False, "Step as fast as possible and publish /clock (deterministic tests)"
        )
        self._headless = declare_bool(
            self, "headless", True, "No viewer window (a passive MuJoCo viewer otherwise, if a display exists)"
        )
        self._rtf_target = declare_double(
            self, "real_time_factor", 1.0, "Real-time mode: sim seconds per wall second", 0.01, 100.0
        )
        gains = {
            name: declare_double_list(self, name, [default], description, 0.0, high, unit)
            for name, default, description, high, unit in (
                ("kp", 300.0, "NORMAL joint stiffness, one value for all or 29 in model order", KP_MAX, "N·m/rad"),
                ("kd", 8.0, "NORMAL joint damping, one value or 29", KD_MAX, "N·m·s/rad"),
                ("hold_kp", 300.0, "HOLD joint stiffness, one value or 29", KP_MAX, "N·m/rad"),
                ("hold_kd", 8.0, "HOLD joint damping, one value or 29", KD_MAX, "N·m·s/rad"),
            )
        }
        for prefix in ("", "hold_"):
            try:
                validate_gains(gains[f"{prefix}kp"], gains[f"{prefix}kd"], JOINT_COUNT)
            except CommandRefused as exc:
                raise NodeConfigurationError(f"{self.get_name()}: parameter {prefix}kp/{prefix}kd: {exc}") from None
        damping_kd = declare_double(
            self, "damping_kd", 10.0, "DAMPING mode: tau = -damping_kd * qdot", 0.0, 200.0, "N·m·s/rad"
        )
        velocity_limit = declare_double(
            self, "velocity_limit", 30.0, "Largest accepted joint velocity target", 0.1, 100.0, "rad/s"
        )
        max_speed = declare_double(
            self, "max_base_speed", 1.0, "Largest accepted hw/cmd_vel planar speed", 0.0, 5.0, "m/s"
        )
        max_yaw = declare_double(self, "max_yaw_rate", 1.5, "Largest accepted hw/cmd_vel yaw rate", 0.0, 10.0, "rad/s")
        cmd_vel_timeout = declare_double(
            self, "cmd_vel_timeout", 0.5, "Base velocity reset to 0 after this long without hw/cmd_vel", 0.01, 10.0, "s"
        )
        self._alive_timeout = declare_double(
            self, "guard_alive_timeout", 0.09, "DAMPING when guard/alive stops for longer than this (sim time)",
            0.005, 10.0, "s",
        )
        require_alive = declare_bool(
            self, "require_guard_alive", True,
            "NORMAL is refused until guard/alive is fresh (no guard, no driving); stop modes are always accepted",
        )
        self._check_stamp = declare_bool(
            self, "guard_alive_check_stamp", True,
            "Ignore a guard/alive whose header stamp differs from this node's clock by more than guard_alive_timeout",
        )
        initial = declare_string(
            self, "initial_mode", "HOLD", "Mode at start: HOLD, DAMPING, ZERO_TORQUE or POWER_OFF"
        )
        if initial not in {m.name for m in STOP_MODES}:
            raise NodeConfigurationError(
                f"{self.get_name()}: parameter initial_mode: {initial!r} is not one of "
                "HOLD, DAMPING, ZERO_TORQUE, POWER_OFF"
            )
        seed = declare_int(self, "seed", 0, "Seed of the encoder-noise generator", 0, 2**31 - 1)
        self._schedule = PublicationSchedule({
            topic: declare_double(
                self, f"{key}_rate_hz", default, f"Publication rate of {topic} (sim time)", 0.1, 500.0, "Hz"
            )
            for topic, key, default in (
                ("joint_states", "joint_states", 500.0), ("imu", "imu", 500.0), ("odom", "odom", 100.0),
                ("actuator_temperatures", "temperature", 10.0), ("battery", "battery", 1.0),
                ("sim/ground_truth", "ground_truth", 50.0),
            )
        })
        fall_height = declare_double(
            self, "fall_height", 0.40, "Ground truth: fallen when the pelvis is lower", 0.05, 0.8, "m"
        )
        fall_tilt = declare_double(
            self, "fall_tilt", 1.0, "Ground truth: fallen when the torso tilts more", 0.1, 3.14, "rad"
        )
        ambient = declare_double(
            self, "ambient_temperature", 25.0, "Actuator ambient temperature", -20.0, 60.0, "degC"
        )
        thermal_tau = declare_double(
            self, "thermal_time_constant", 120.0, "Actuator thermal time constant", 1.0, 3600.0, "s"
        )
        battery_charge = declare_double(
            self, "battery_initial_charge", 0.9, "Battery charge at start (fraction)", 0.0, 1.0
        )
        lead = declare_double(
            self, "lockstep_guard_lead", 0.05, "Lock-step: sim time may run ahead of the last guard/alive by this much",
            0.002, 10.0, "s",
        )
        patience = declare_double(
            self, "lockstep_guard_wait", 1.0, "Lock-step: wall time to wait for a lagging guard before running on",
            0.0, 60.0, "s",
        )
        if self._lockstep and lead >= self._alive_timeout:
            raise NodeConfigurationError(
                f"{self.get_name()}: parameter lockstep_guard_lead ({lead} s) must be below guard_alive_timeout "
                f"({self._alive_timeout} s), or the watchdog would trip on a guard that keeps up"
            )
        self._record_file = declare_string(
            self, "record_file", "", "Write ground truth (summary + series) as JSON here on shutdown"
        )
        self._guard_wait = LockstepGuardWait(lead, patience)

        config = SimConfig(
            kp=gains["kp"], kd=gains["kd"], hold_kp=gains["hold_kp"], hold_kd=gains["hold_kd"], damping_kd=damping_kd,
            velocity_limit=velocity_limit, max_base_speed=max_speed, max_yaw_rate=max_yaw,
            cmd_vel_timeout=cmd_vel_timeout,
            guard_alive_timeout=self._alive_timeout, require_guard_alive=require_alive,
            initial_mode=ActuationMode[initial], seed=seed, fall=FallCriteria(fall_height, fall_tilt),
            thermal=ThermalParameters(ambient_c=ambient, time_constant_s=thermal_tau),
            battery=BatteryParameters(initial_charge_fraction=battery_charge), apply_rogue_commands=False,
        )
        started = time.perf_counter()
        try:
            self._sim = HumanoidSim(config)
        except (ModelLoadError, ValueError) as exc:
            raise NodeConfigurationError(f"{self.get_name()}: {exc}") from None
        self.model_load_seconds = time.perf_counter() - started
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self.last_refusal = ""
        self._mode_changes_logged = 0  # physics thread only
        self._delayed: DelayQueue[tuple[Any, Any]] = DelayQueue()  # (publisher, message); physics thread only
        self._rogue: Node | None = None
        self._rogue_publisher: Any = None
        self._rtf = RealTimeFactorWindow()  # physics thread only
        self._viewer: Any = None

        self._pub = {
            "joint_states": self.create_publisher(JointState, "joint_states", SENSOR_DATA),
            "imu": self.create_publisher(Imu, "imu", SENSOR_DATA),
            "odom": self.create_publisher(Odometry, "odom", SENSOR_DATA),
            "actuator_temperatures": self.create_publisher(JointTemperatures, "actuator_temperatures", SENSOR_DATA),
            "battery": self.create_publisher(BatteryState, "battery", SENSOR_DATA),
            "sim/ground_truth": self.create_publisher(SimGroundTruth, "sim/ground_truth", COMMANDS),
        }
        self._clock_pub = self.create_publisher(Clock, "/clock", CLOCK_QOS) if self._lockstep else None
        self._actuation_pub = self.create_publisher(ActuationState, "hw/actuation_state", LATCHED)
        self._publish_actuation_state(self._sim.mode, ActuationState.SOURCE_START, "driver started", 0)
        self.create_subscription(JointTrajectory, "hw/joint_command", self._on_joint_command, COMMANDS)
        self.create_subscription(Twist, "hw/cmd_vel", self._on_cmd_vel, COMMANDS)
        # guard/alive is taken by the physics thread itself before every step, not by the executor: a stalled
        # executor (busy callbacks, a new DDS participant, a loaded machine) must not look like a dead guard to
        # the hardware watchdog (measured: alives taken 92-98 ms late tripped a 90 ms watchdog).
        self._alive_intake = BatchedIntake(f"{self.get_name()}_alive", self.context, self.get_namespace(),
                                           on_error=lambda _topic, exc: self._refused(f"guard/alive: {exc}"))
        self._alive_intake.subscribe(Header, "guard/alive", GUARD_ALIVE_QOS,
                                     lambda msg, _info: self._on_guard_alive(msg))
        self.create_service(SetActuationMode, "hw/set_actuation_mode", self._on_set_mode)
        self.create_service(InjectFault, "sim/inject_fault", self._on_inject_fault)
        if not self._headless:
            self._open_viewer()
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self._thread = threading.Thread(target=self._run, name="humanoid_sim_physics", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"G1 loaded in {self.model_load_seconds:.2f} s; {'lock-step (/clock)' if self._lockstep else 'real-time'} "
            f"mode, actuation {self._sim.mode.name}, guard/alive timeout {self._alive_timeout} s"
            f"{'' if require_alive else ' (NORMAL allowed without a guard)'}"
        )

    # ------------------------------------------------------------------ public helpers (tests, demo)
    @property
    def sim(self) -> HumanoidSim:
        """The simulator; hold `lock` while touching it from another thread."""
        return self._sim

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
        self._destroy_rogue()
        if not self._thread.is_alive():
            self._alive_intake.destroy()
        if self._viewer is not None:
            try:
                self._viewer.close()
            except Exception:
                pass
        if self._record_file:
            with self._lock:
                self._sim.recorder.write_json(Path(self._record_file), self._sim.faults)

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()

    # ------------------------------------------------------------------ callbacks
    def _refused(self, message: str) -> None:
        self.last_refusal = message
        self.get_logger().warning(message, throttle_duration_sec=1.0)

    def _on_joint_command(self, msg: JointTrajectory) -> None:
        if not msg.points:
            self._refused("joint command refused: no trajectory points")
            return
        point = msg.points[0]
        with self._lock:
            outcome = self._sim.apply_joint_command(
                list(msg.joint_names), list(point.positions), list(point.velocities), list(point.effort)
            )
        if not outcome.success and "refused" in outcome.message:
            self._refused(outcome.message)

    def _on_cmd_vel(self, msg: Twist) -> None:
        linear = (msg.linear.x, msg.linear.y, msg.linear.z)
        angular = (msg.angular.x, msg.angular.y, msg.angular.z)
        with self._lock:
            outcome = self._sim.set_base_velocity(linear, angular)
        if not outcome.success and "refused" in outcome.message:
            self._refused(outcome.message)

    def _now_s(self) -> float:
        if self._lockstep:
            with self._lock:
                return self._sim.time
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _on_guard_alive(self, msg: Header) -> None:
        if self._check_stamp:
            age = self._now_s() - (msg.stamp.sec + msg.stamp.nanosec * 1e-9)
            if abs(age) > self._alive_timeout:
                self._refused(
                    f"guard/alive ignored: stamp is {age:+.3f} s off this node's clock "
                    f"({'sim time: does the guard use use_sim_time?' if self._lockstep else 'clock skew?'})"
                )
                return
        with self._lock:
            self._sim.guard_alive()

    def _on_set_mode(
        self, request: SetActuationMode.Request, response: SetActuationMode.Response
    ) -> SetActuationMode.Response:
        with self._lock:
            outcome = self._sim.set_actuation_mode(int(request.mode), request.reason, "request")
            mode = outcome.mode if outcome.mode is not None else self._sim.mode
        response.success = outcome.success
        response.mode = int(mode)
        response.message = outcome.message
        if not outcome.success:
            self._refused(f"set_actuation_mode({request.mode}): {outcome.message}")
        return response

    def _on_inject_fault(self, request: InjectFault.Request, response: InjectFault.Response) -> InjectFault.Response:
        with self._lock:
            outcome = self._sim.inject_fault(request.kind, request.onset, request.duration, request.parameters)
        response.accepted = outcome.success
        response.fault_id = outcome.fault_id
        response.message = outcome.message
        text = f"inject_fault {request.kind!r}: {outcome.message}"
        if outcome.success:
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)
        return response

    # ------------------------------------------------------------------ physics thread
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:
            if self._stop.is_set() or not self.context.ok():
                return  # shutting down (e.g. SIGINT shut the context down before close())
            self.get_logger().fatal(f"physics thread stopped: {type(exc).__name__}: {exc}")

    def _loop(self) -> None:
        pacer = RealTimePacer(self._sim.timestep, self._rtf_target, time.monotonic())
        while not self._stop.is_set():
            if self._lockstep:
                self._guard_wait.wait(self._drained_guard_state, time.monotonic, time.sleep, self._stop.is_set)
            else:
                self._alive_intake.drain()
            with self._lock:
                self._sim.step()
                sim_time = self._sim.time
                outputs = self._collect(sim_time)
                rogue = self._sim.take_rogue_commands()
                rogue_active = any(f.kind is FaultKind.ROGUE_PUBLISHER for f in self._sim.active_faults())
                mode_changes = self._new_mode_changes()
            self._rtf.add(time.monotonic(), sim_time)
            self._publish(sim_time, outputs)
            self._handle_rogue(rogue, rogue_active, sim_time)
            self._report_mode_changes(mode_changes)
            if self._viewer is not None:
                self._sync_viewer()
            if self._lockstep:
                time.sleep(0)  # let callbacks in
                continue
            delay = pacer.after_step(time.monotonic())
            # Behind schedule (catching up after a stall) the loop still yields: a threading.Lock is not fair,
            # and back-to-back steps starved the callbacks (guard/alive, commands, the actuation service) for
            # 0.36 s, which the driver's own watchdog took for a dead guard (measured, demo under load).
            time.sleep(delay if delay > 0.0 else 0.0)

    def _drained_guard_state(self) -> GuardHeartbeatState:
        self._alive_intake.drain()
        return self._guard_state()

    def _guard_state(self) -> GuardHeartbeatState:
        with self._lock:
            return GuardHeartbeatState(self._sim.guard_alive_seen, self._sim.last_guard_alive_time, self._sim.time)

    def _collect(self, sim_time: float) -> dict[str, Any]:
        sim = self._sim
        out: dict[str, Any] = {}
        for topic in self._schedule.due(sim_time):
            if topic == "sim/ground_truth" or not sim.topic_dropped(topic):
                out[topic] = (
                    sim.joint_state() if topic == "joint_states" else sim.imu() if topic == "imu"
                    else sim.odom() if topic == "odom" else sim.temperatures() if topic == "actuator_temperatures"
                    else sim.battery() if topic == "battery" else sim.ground_truth(self._rtf.factor)
                )
        out["_delays"] = {topic: sim.topic_delay(topic) for topic in out}
        return out

    def _stamp(self, sim_time: float) -> TimeMsg:
        return _time_msg(sim_time) if self._lockstep else self.get_clock().now().to_msg()

    def _publish(self, sim_time: float, outputs: dict[str, Any]) -> None:
        stamp = self._stamp(sim_time)
        if self._clock_pub is not None:
            self._clock_pub.publish(Clock(clock=stamp))
        delays = outputs.pop("_delays")
        for topic, reading in outputs.items():
            msg = self._to_message(topic, reading, stamp)
            delay = delays.get(topic, 0.0)
            if delay > 0.0:
                self._delayed.put(sim_time + delay, (self._pub[topic], msg))
            else:
                self._pub[topic].publish(msg)
        for publisher, msg in self._delayed.pop_due(sim_time):
            publisher.publish(msg)

    def _to_message(self, topic: str, reading: Any, stamp: TimeMsg) -> Any:
        names = list(self._sim.joint_names)
        if topic == "joint_states":
            return JointState(
                header=Header(stamp=stamp, frame_id=""), name=names, position=reading.position.tolist(),
                velocity=reading.velocity.tolist(), effort=reading.effort.tolist(),
            )
        if topic == "imu":
            msg = Imu(header=Header(stamp=stamp, frame_id="imu_in_pelvis"))
            w, x, y, z = reading.orientation_wxyz.tolist()
            msg.orientation.w, msg.orientation.x, msg.orientation.y, msg.orientation.z = w, x, y, z
            msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = reading.angular_velocity.tolist()
            a = reading.linear_acceleration.tolist()
            msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = a
            return msg
        if topic == "odom":
            msg = Odometry(header=Header(stamp=stamp, frame_id="odom"), child_frame_id="pelvis")
            p = msg.pose.pose
            p.position.x, p.position.y, p.position.z = reading.position.tolist()
            p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z = reading.orientation_wxyz.tolist()
            t = msg.twist.twist
            t.linear.x, t.linear.y, t.linear.z = reading.linear_velocity.tolist()
            t.angular.x, t.angular.y, t.angular.z = reading.angular_velocity.tolist()
            return msg
        if topic == "actuator_temperatures":
            return JointTemperatures(header=Header(stamp=stamp), name=names, temperature=reading.tolist())
        if topic == "battery":
            return BatteryState(
                header=Header(stamp=stamp), voltage=reading.voltage, temperature=math.nan, current=reading.current,
                charge=reading.charge_ah, capacity=reading.capacity_ah, design_capacity=reading.capacity_ah,
                percentage=reading.percentage, power_supply_status=BatteryState.POWER_SUPPLY_STATUS_DISCHARGING,
                power_supply_health=BatteryState.POWER_SUPPLY_HEALTH_GOOD,
                power_supply_technology=BatteryState.POWER_SUPPLY_TECHNOLOGY_LION, present=True,
            )
        return SimGroundTruth(
            header=Header(stamp=stamp), pelvis_height=reading.pelvis_height, tilt=reading.tilt, fallen=reading.fallen,
            peak_impact_speed=reading.peak_impact_speed, actuation_mode=int(reading.mode),
            actuation_mode_name=reading.mode.name, active_faults=list(reading.active_faults), sim_time=reading.time,
            real_time_factor=float(reading.real_time_factor),
        )

    def _handle_rogue(self, commands: list[RogueCommand], active: bool, sim_time: float) -> None:
        if not active:
            if self._rogue is not None:
                self._destroy_rogue()
            return
        if self._rogue is None:
            self._rogue = Node("rogue_controller", context=self.context, namespace=self.get_namespace())
            self._rogue_publisher = self._rogue.create_publisher(JointTrajectory, "hw/joint_command", COMMANDS)
            self.get_logger().warning("injected fault: rogue_controller now publishes on hw/joint_command")
        for command in commands:
            msg = JointTrajectory(header=Header(stamp=self._stamp(sim_time)), joint_names=list(command.names))
            msg.points = [JointTrajectoryPoint(positions=command.positions.tolist())]
            self._rogue_publisher.publish(msg)

    def _destroy_rogue(self) -> None:
        if self._rogue is not None:
            self._rogue.destroy_node()
            self._rogue = None
            self._rogue_publisher = None

    def _new_mode_changes(self) -> list[ModeChange]:
        """Mode changes recorded since the last call (service callbacks add them too): hold the lock."""
        changes = self._sim.recorder.mode_changes[self._mode_changes_logged:]
        self._mode_changes_logged += len(changes)
        return changes

    def _report_mode_changes(self, changes: list[ModeChange]) -> None:
        """Log each actuation change and publish it on hw/actuation_state (physics thread)."""
        first = self._mode_changes_logged - len(changes) + 1
        for count, change in enumerate(changes, start=first):
            self._publish_actuation_state(change.mode, change.source, change.reason, count)
            text = (
                f"actuation {change.previous.name} -> {change.mode.name} at t={change.time:.3f} s "
                f"({change.source}: {change.reason})"
            )
            if change.source == "request":
                self.get_logger().info(text)
            else:
                self.get_logger().warning(text)

    def _publish_actuation_state(self, mode: ActuationMode, source: str, reason: str, changes: int) -> None:
        msg = ActuationState(mode=int(mode), mode_name=mode.name, source=source, reason=reason[:200], changes=changes)
        msg.header.stamp = self._stamp(self._sim.time)
        self._actuation_pub.publish(msg)

    # ------------------------------------------------------------------ optional viewer
    def _open_viewer(self) -> None:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            # GLFW ends the whole process when it cannot open a display: do not ask it to.
            self.get_logger().warning("no display (DISPLAY unset): no viewer, running headless")
            return
        try:
            import mujoco.viewer

            self._viewer = mujoco.viewer.launch_passive(self._sim.model, self._sim.data)
            self._viewer_next = 0.0
        except Exception as exc:
            self.get_logger().warning(f"no viewer ({type(exc).__name__}: {exc}); running headless")
            self._viewer = None

    def _sync_viewer(self) -> None:
        now = time.monotonic()
        if now < self._viewer_next:
            return
        self._viewer_next = now + 1.0 / 30.0
        with self._lock:
            if self._viewer.is_running():
                self._viewer.sync()


def main(args: list[str] | None = None) -> None:
    from ftrobot_guard.ros.single_node import run_single_node

    run_single_node(HumanoidSimNode, args)
