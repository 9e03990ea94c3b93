"""HumanoidSim: the simulated G1 behind the hardware contract, as a pure Python API (no ROS).

Tests and benchmarks drive it directly, faster than real time; the ROS node wraps the same object.
One ``step()`` advances the physics by the model's timestep (2 ms): faults and the guard-alive
watchdog are evaluated, the joint torques of the current actuation mode are computed and clipped,
MuJoCo integrates, then the thermal model, the battery and the ground truth are updated.
Same config, seed and calls -> identical trajectories (MuJoCo is deterministic on one machine).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

from ftrobot_guard.hardware.actuation_modes import STOP_MODES, ActuationMode, UnknownModeError, parse_mode
from ftrobot_guard.hardware.joint_commands import (
    BaseVelocity,
    CommandRefused,
    JointCommand,
    JointLimits,
    validate_base_velocity,
    validate_gains,
    validate_joint_command,
)
from ftrobot_guard.sim.battery_model import BatteryModel, BatteryParameters, BatteryReading
from ftrobot_guard.sim.faults import (
    Fault,
    FaultKind,
    FaultRequestError,
    FaultSchedule,
    FaultTargets,
    parse_kind,
    parse_parameters,
    parse_timing,
)
from ftrobot_guard.sim.g1_model import G1Model, load_g1
from ftrobot_guard.sim.ground_truth import (
    FallCriteria,
    GroundTruthRecorder,
    GroundTruthSample,
    ImpactRecord,
    ModeChange,
    tilt_of,
)
from ftrobot_guard.sim.humanoid_physics import base_velocity_world, displace_base, joint_torques
from ftrobot_guard.sim.thermal_model import ThermalModel, ThermalParameters

SLOW_UPDATE_STEPS = 5  # thermal and battery models run every 5 physics steps (10 ms)
TRIP_UNIT = {"forward": (1.0, 0.0), "backward": (-1.0, 0.0), "left": (0.0, 1.0), "right": (0.0, -1.0)}


@dataclass(frozen=True)
class SimConfig:
    kp: tuple[float, ...] = (300.0,)          # NORMAL PD gains: one value for all joints or 29
    kd: tuple[float, ...] = (8.0,)
    hold_kp: tuple[float, ...] = (300.0,)     # HOLD PD gains
    hold_kd: tuple[float, ...] = (8.0,)
    damping_kd: float = 10.0                  # DAMPING: tau = -damping_kd * qdot
    velocity_limit: float = 30.0              # rad/s, largest accepted velocity target
    max_base_speed: float = 1.0               # m/s
    max_yaw_rate: float = 1.5                 # rad/s
    cmd_vel_timeout: float = 0.5              # s of sim time without hw/cmd_vel -> base velocity 0
    guard_alive_timeout: float = 0.09         # s of sim time without guard/alive -> DAMPING
    require_guard_alive: bool = True          # NORMAL only while guard/alive is fresh
    initial_mode: ActuationMode = ActuationMode.HOLD
    seed: int = 0
    fall: FallCriteria = field(default_factory=FallCriteria)
    thermal: ThermalParameters = field(default_factory=ThermalParameters)
    battery: BatteryParameters = field(default_factory=BatteryParameters)
    record_period: float = 0.01
    apply_rogue_commands: bool = True         # pure API: rogue commands applied here; the node publishes them


@dataclass(frozen=True)
class Outcome:
    """Result of a request (mode change, command, fault): success flag and a clear message."""

    success: bool
    message: str
    mode: ActuationMode | None = None
    fault_id: str = ""


@dataclass(frozen=True)
class JointStateReading:
    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


@dataclass(frozen=True)
class ImuReading:
    orientation_wxyz: np.ndarray
    angular_velocity: np.ndarray   # rad/s, IMU frame
    linear_acceleration: np.ndarray  # m/s², IMU frame (specific force: +9.81 z when upright at rest)


@dataclass(frozen=True)
class OdomReading:
    position: np.ndarray           # m, world
    orientation_wxyz: np.ndarray
    linear_velocity: np.ndarray    # m/s, pelvis frame
    angular_velocity: np.ndarray   # rad/s, pelvis frame


@dataclass(frozen=True)
class RogueCommand:
    names: tuple[str, ...]
    positions: np.ndarray


@functools.lru_cache(maxsize=1)
def _shared_g1() -> G1Model:
    return load_g1()


def _rotation_to_quaternion(matrix: np.ndarray) -> np.ndarray:
    quaternion = np.zeros(4)
    mujoco.mju_mat2Quat(quaternion, np.asarray(matrix, dtype=np.float64).reshape(9))
    return quaternion


@dataclass
class _CommandState:
    target_position: np.ndarray
    target_velocity: np.ndarray
    feed_forward: np.ndarray


@dataclass
class _Pending:
    due: float
    apply: Callable[[], object] = field(repr=False)  # its result (an Outcome) is not used


class HumanoidSim:
    """The simulated G1. Every public request returns an Outcome; bad input never raises."""

    def __init__(self, config: SimConfig = SimConfig(), g1: G1Model | None = None) -> None:
        base = g1 or _shared_g1()
        # Own copy of the model: a stuck_joint fault writes the lock position into model.eq_data.
        self.g1 = dataclasses.replace(base, model=copy.copy(base.model))
        self.model = self.g1.model
        self.data = mujoco.MjData(self.model)
        self.config = config
        n = len(self.g1.joint_names)
        try:
            self._gains = validate_gains(config.kp, config.kd, n)
            self._hold_gains = validate_gains(config.hold_kp, config.hold_kd, n)
        except CommandRefused as exc:
            raise ValueError(f"sim config: {exc}") from None
        if not (math.isfinite(config.damping_kd) and 0.0 <= config.damping_kd <= 200.0):
            raise ValueError("sim config: damping_kd must be within [0, 200]")
        self._limits = JointLimits(
            self.g1.joint_names, self.g1.position_lower, self.g1.position_upper, self.g1.effort_limit,
            config.velocity_limit,
        )
        bodies = tuple(
            mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_BODY, b) for b in range(1, self.model.nbody)
        )
        self._targets = FaultTargets(joints=self.g1.joint_names, bodies=bodies)
        self._rng = np.random.default_rng(config.seed)
        self.data.qpos[:] = self.g1.stand_qpos
        mujoco.mj_forward(self.model, self.data)
        q = self.data.qpos[self.g1.qpos_index].copy()
        self._command = _CommandState(q.copy(), np.zeros(n), np.zeros(n))
        self._hold_position = q.copy()
        self._torque = np.zeros(n)
        self._mode = config.initial_mode
        self._base_velocity = BaseVelocity(0.0, 0.0, 0.0)
        self._base_velocity_time = -math.inf
        self._alive_seen = False
        self._last_alive = -math.inf
        self._pending: list[_Pending] = []
        self._faults = FaultSchedule()
        self._active: dict[str, Fault] = {}
        self._rogue_next: dict[str, float] = {}
        self._rogue_outbox: list[RogueCommand] = []
        self._thermal = ThermalModel(self.g1.effort_limit, config.thermal)
        self._battery = BatteryModel(self.g1.effort_limit, config.battery)
        self._peak_impact = 0.0
        self.peak_impact: ImpactRecord | None = None   # the largest approach speed so far: when, which body
        self._impact_counted = np.ones(self.model.ngeom, dtype=bool)  # geoms whose floor contacts count
        self._impact_counted[self.g1.floor_geom] = False
        self._impact_counted[np.isin(self.model.geom_bodyid, [0, *self.g1.foot_bodies])] = False
        self._floor_touching: frozenset[int] = frozenset()  # geoms on the floor in the previous step
        self.recorder = GroundTruthRecorder(period_s=config.record_period)
        self.refused_commands = 0
        self._slow_counter = 0
        self.recorder.observe(self.ground_truth())

    # ------------------------------------------------------------------ properties
    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        return self.g1.timestep

    @property
    def mode(self) -> ActuationMode:
        return self._mode

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.g1.joint_names

    @property
    def faults(self) -> list[Fault]:
        return list(self._faults.faults)

    def active_faults(self) -> list[Fault]:
        return list(self._active.values())

    @property
    def guard_alive_seen(self) -> bool:
        return self._alive_seen

    @property
    def last_guard_alive_time(self) -> float:
        """Sim time of the last guard/alive taken into account (-inf before the first)."""
        return self._last_alive

    def guard_alive_fresh(self) -> bool:
        return self._alive_seen and self.time - self._last_alive <= self.config.guard_alive_timeout

    # ------------------------------------------------------------------ requests
    def set_actuation_mode(self, mode: Any, reason: str = "", source: str = "api") -> Outcome:
        try:
            requested = parse_mode(mode)
        except UnknownModeError as exc:
            return Outcome(False, str(exc), self._mode)
        if source == "request" and self._input_dropped("hw/set_actuation_mode"):
            return Outcome(False, f"{requested.name} request lost (injected sensor_dropout on hw/set_actuation_mode)",
                           self._mode)
        if (
            requested not in STOP_MODES and not self.guard_alive_fresh()
            and (self.config.require_guard_alive or self._alive_seen)
        ):
            return Outcome(
                False,
                f"{requested.name} refused: no guard/alive within {self.config.guard_alive_timeout} s "
                "(the robot is not driven without a live guard)",
                self._mode,
            )
        if requested is self._mode:
            return Outcome(True, f"already in {requested.name}", self._mode)
        self._change_mode(requested, source, reason)
        return Outcome(True, f"mode {requested.name}", self._mode)

    def apply_joint_command(
        self,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float] = (),
        efforts: Sequence[float] = (),
        source: str = "hw/joint_command",
    ) -> Outcome:
        """Validate at once; apply (now, or after an injected delay) only in NORMAL. Never partial."""
        try:
            command = validate_joint_command(self._limits, names, positions, velocities, efforts)
        except CommandRefused as exc:
            self.refused_commands += 1
            return Outcome(False, f"joint command refused: {exc}", self._mode)
        if self._input_dropped("hw/joint_command"):
            return Outcome(False, "joint command lost (injected sensor_dropout on hw/joint_command)", self._mode)
        delay = self._input_delay("hw/joint_command")
        if delay > 0.0:
            self._pending.append(_Pending(self.time + delay, lambda: self._apply_command(command)))
            return Outcome(True, f"joint command accepted, delayed {delay} s by an injected fault", self._mode)
        return self._apply_command(command)

    def set_base_velocity(self, linear: Sequence[float], angular: Sequence[float]) -> Outcome:
        try:
            velocity = validate_base_velocity(linear, angular, self.config.max_base_speed, self.config.max_yaw_rate)
        except CommandRefused as exc:
            self.refused_commands += 1
            return Outcome(False, f"base velocity refused: {exc}", self._mode)
        if self._mode is not ActuationMode.NORMAL:
            return Outcome(False, f"base velocity ignored in {self._mode.name}", self._mode)
        self._base_velocity = velocity
        self._base_velocity_time = self.time
        return Outcome(True, "base velocity accepted", self._mode)

    def guard_alive(self) -> None:
        """A guard/alive heartbeat arrived now (subject to injected dropout/delay on guard/alive)."""
        if self._input_dropped("guard/alive"):
            return
        delay = self._input_delay("guard/alive")
        if delay > 0.0:
            self._pending.append(_Pending(self.time + delay, self._mark_alive))
        else:
            self._mark_alive()

    def inject_fault(
        self, kind: Any, onset: Any = 0.0, duration: Any = 0.0, parameters: str | Mapping[str, Any] | None = None
    ) -> Outcome:
        """Schedule a fault `onset` s of sim time from now; `clear` ends faults at once."""
        try:
            fault_kind = parse_kind(kind)
            onset_s, duration_s = parse_timing(onset, duration)
            params = parse_parameters(fault_kind, parameters, self._targets)
            if fault_kind is FaultKind.CLEAR:
                cleared = self._faults.clear(self.time, params["fault_id"])
                self._update_faults()
                names = ", ".join(f.label() for f in cleared) or "none active"
                return Outcome(True, f"cleared: {names}", self._mode)
        except FaultRequestError as exc:
            return Outcome(False, f"fault refused: {exc}", self._mode)
        fault = self._faults.add(fault_kind, self.time + onset_s, duration_s, params)
        self._update_faults()
        return Outcome(True, f"{fault.label()} at t={fault.onset:.3f} s", self._mode, fault.fault_id)

    def take_rogue_commands(self) -> list[RogueCommand]:
        """Rogue commands produced since the last call (when config.apply_rogue_commands is False)."""
        commands, self._rogue_outbox = self._rogue_outbox, []
        return commands

    # ------------------------------------------------------------------ stepping
    def step(self, count: int = 1) -> None:
        for _ in range(count):
            self._step_once()

    def run_for(self, seconds: float, on_step: Callable[[HumanoidSim], None] | None = None) -> None:
        """Advance `seconds` of sim time; `on_step(sim)` runs before each step (a controller, a heartbeat)."""
        steps = round(seconds / self.timestep)
        for _ in range(steps):
            if on_step is not None:
                on_step(self)
            self._step_once()

    def _step_once(self) -> None:
        now = self.time
        self._run_pending(now)
        self._update_faults()
        if (
            self._alive_seen and now - self._last_alive > self.config.guard_alive_timeout
            and self._mode in (ActuationMode.NORMAL, ActuationMode.HOLD)
        ):
            self._change_mode(
                ActuationMode.DAMPING, "guard_alive_timeout",
                f"no guard/alive for {now - self._last_alive:.3f} s (timeout {self.config.guard_alive_timeout} s)",
            )
        if now - self._base_velocity_time > self.config.cmd_vel_timeout:
            self._base_velocity = BaseVelocity(0.0, 0.0, 0.0)
        self._produce_rogue_commands(now)

        g1, data = self.g1, self.data
        q = data.qpos[g1.qpos_index]
        qd = data.qvel[g1.dof_index]
        if self._mode is ActuationMode.HOLD:
            target, target_velocity, feed_forward = self._hold_position, np.zeros_like(q), np.zeros_like(q)
            gains = self._hold_gains
        else:
            target, target_velocity = self._command.target_position, self._command.target_velocity
            feed_forward, gains = self._command.feed_forward, self._gains
        self._torque = joint_torques(
            self._mode, q, qd, target, target_velocity, feed_forward, gains, self.config.damping_kd, g1.effort_limit
        )
        data.ctrl[:] = self._torque
        data.xfrc_applied[:] = 0.0
        self._apply_external_forces()
        mujoco.mj_step(self.model, data)
        self._update_impacts()  # before the kinematic base displacement: contacts and velocities of one state
        if self._mode is ActuationMode.NORMAL and self._base_moving():
            displace_base(data.qpos[0:7], self._base_velocity, self.timestep)
            mujoco.mj_kinematics(self.model, data)

        self._slow_counter += 1
        if self._slow_counter >= SLOW_UPDATE_STEPS:  # thermal and battery: sample-and-hold at 100 Hz
            self._slow_counter = 0
            dt = self.timestep * SLOW_UPDATE_STEPS
            self._thermal.step(self._torque, dt, self._extra_heat())
            powered = self._mode is not ActuationMode.POWER_OFF
            self._battery.step(self._torque, data.qvel[g1.dof_index], powered, dt, self._extra_drain())
            if powered and self._battery.charge_ah <= 0.0:
                self._change_mode(ActuationMode.POWER_OFF, "battery_empty", "battery empty: motor power cut")
        if self.time + 1e-9 >= self.recorder.next_sample_time:
            self.recorder.observe(self.ground_truth())

    # ------------------------------------------------------------------ readings
    def joint_state(self) -> JointStateReading:
        """What the joint encoders report (encoder faults applied); SI units, model joint order."""
        g1 = self.g1
        position = self.data.qpos[g1.qpos_index].copy()
        velocity = self.data.qvel[g1.dof_index].copy()
        for fault in self._active.values():
            joint = fault.parameters.get("joint")
            if not joint:
                continue  # not an encoder fault (those always name a joint or "all")
            mask = self._joint_mask(joint)
            if fault.kind is FaultKind.ENCODER_SPIKE:
                position[mask] += fault.parameters["offset"]
            elif fault.kind is FaultKind.ENCODER_NOISE:
                position[mask] += self._rng.normal(0.0, fault.parameters["stddev"], int(np.count_nonzero(mask)))
            elif fault.kind is FaultKind.ENCODER_NAN:
                position[mask] = math.nan
                velocity[mask] = math.nan
        return JointStateReading(g1.joint_names, position, velocity, self._torque.copy())

    def imu(self) -> ImuReading:
        g1, data = self.g1, self.data
        rotation = data.site_xmat[g1.imu_site].reshape(3, 3)
        gyro = data.sensordata[g1.gyro_address:g1.gyro_address + 3].copy()
        if self._mode is ActuationMode.NORMAL and self._base_moving():
            gyro += rotation.T @ np.array([0.0, 0.0, self._base_velocity.wz])
        return ImuReading(
            orientation_wxyz=_rotation_to_quaternion(rotation),
            angular_velocity=gyro,
            linear_acceleration=data.sensordata[g1.accel_address:g1.accel_address + 3].copy(),
        )

    def odom(self) -> OdomReading:
        data = self.data
        orientation = data.qpos[3:7].copy()
        rotation = data.xmat[self.g1.pelvis_body].reshape(3, 3)
        linear_world = data.qvel[0:3].copy()
        angular = data.qvel[3:6].copy()
        if self._mode is ActuationMode.NORMAL and self._base_moving():
            linear_world += base_velocity_world(orientation, self._base_velocity)
            angular += rotation.T @ np.array([0.0, 0.0, self._base_velocity.wz])
        return OdomReading(data.qpos[0:3].copy(), orientation, rotation.T @ linear_world, angular)

    def temperatures(self) -> np.ndarray:
        return self._thermal.temperature.copy()

    def battery(self) -> BatteryReading:
        return self._battery.reading()

    def ground_truth(self, real_time_factor: float = math.nan) -> GroundTruthSample:
        data, g1 = self.data, self.g1
        height = float(data.xpos[g1.pelvis_body][2])
        tilt = tilt_of(data.xmat[g1.torso_body])
        fallen = height < self.config.fall.pelvis_height_m or tilt > self.config.fall.tilt_rad
        return GroundTruthSample(
            self.time, height, tilt, fallen, self._peak_impact, self._mode,
            tuple(f.label() for f in self._active.values()), real_time_factor,
        )

    def topic_dropped(self, topic: str) -> bool:
        return any(
            f.kind is FaultKind.SENSOR_DROPOUT and f.parameters["topic"] == topic for f in self._active.values()
        )

    def topic_delay(self, topic: str) -> float:
        return max(
            (f.parameters["delay"] for f in self._active.values()
             if f.kind is FaultKind.MESSAGE_DELAY and f.parameters["topic"] == topic),
            default=0.0,
        )

    def summary(self) -> dict[str, Any]:
        return self.recorder.summary(self.faults)

    # ------------------------------------------------------------------ internals
    def _change_mode(self, mode: ActuationMode, source: str, reason: str) -> None:
        previous = self._mode
        if mode is previous:
            return
        measured = self.data.qpos[self.g1.qpos_index].copy()
        if mode is ActuationMode.HOLD:
            self._hold_position = measured
        if mode is ActuationMode.NORMAL:
            # Re-anchor: a stale target from before the stop must never cause a jump.
            n = measured.size
            self._command = _CommandState(measured, np.zeros(n), np.zeros(n))
        if mode is not ActuationMode.NORMAL:
            self._base_velocity = BaseVelocity(0.0, 0.0, 0.0)
        self._mode = mode
        self.recorder.mode_changed(ModeChange(self.time, previous, mode, source, reason))

    def _apply_command(self, command: JointCommand) -> Outcome:
        if self._mode is not ActuationMode.NORMAL:
            return Outcome(False, f"joint command ignored in {self._mode.name}", self._mode)
        self._command.target_position[command.indices] = command.positions
        self._command.target_velocity[command.indices] = command.velocities
        self._command.feed_forward[command.indices] = command.efforts
        return Outcome(True, "joint command applied", self._mode)

    def _mark_alive(self) -> None:
        self._alive_seen = True
        self._last_alive = self.time

    def _run_pending(self, now: float) -> None:
        if not self._pending:
            return
        due = [p for p in self._pending if p.due <= now + 1e-12]
        self._pending = [p for p in self._pending if p.due > now + 1e-12]
        for pending in due:
            pending.apply()

    def _input_dropped(self, topic: str) -> bool:
        return self.topic_dropped(topic)

    def _input_delay(self, topic: str) -> float:
        return self.topic_delay(topic)

    def _update_faults(self) -> None:
        now = self.time
        current = {f.fault_id: f for f in self._faults.active(now)}
        for fault_id, fault in self._active.items():
            if fault_id not in current and fault.kind is FaultKind.STUCK_JOINT:
                self._set_stuck(fault.parameters["joint"], None)
        for fault_id, fault in current.items():
            if fault_id in self._active:
                continue
            if fault.kind is FaultKind.STUCK_JOINT:
                joint = fault.parameters["joint"]
                self._set_stuck(joint, float(self.data.qpos[self.g1.qpos_index[self.g1.joint_index(joint)]]))
            elif fault.kind is FaultKind.ROGUE_PUBLISHER:
                self._rogue_next[fault_id] = now
        self._active = current

    def _set_stuck(self, joint: str, position: float | None) -> None:
        equality = self.g1.stuck_equality[joint]
        still_stuck = any(
            f.kind is FaultKind.STUCK_JOINT and f.parameters["joint"] == joint for f in self._faults.active(self.time)
        )
        if position is None:
            if not still_stuck:
                self.data.eq_active[equality] = 0
            return
        self.model.eq_data[equality, :] = 0.0
        self.model.eq_data[equality, 0] = position
        self.data.eq_active[equality] = 1

    def _joint_mask(self, joint: str) -> np.ndarray:
        mask = np.zeros(len(self.g1.joint_names), dtype=bool)
        if joint == "all":
            mask[:] = True
        else:
            mask[self.g1.joint_index(joint)] = True
        return mask

    def _apply_external_forces(self) -> None:
        data = self.data
        for fault in self._active.values():
            if fault.kind is FaultKind.PUSH:
                body = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, fault.parameters["body"])
                data.xfrc_applied[body, 0:3] += fault.parameters["force"]
            elif fault.kind is FaultKind.TRIP:
                # Feet swept back while the torso carries on: the net external force is zero.
                ux, uy = TRIP_UNIT[fault.parameters["direction"]]
                force = fault.parameters["force"]
                data.xfrc_applied[self.g1.torso_body, 0:2] += (force * ux, force * uy)
                for foot in self.g1.foot_bodies:
                    data.xfrc_applied[foot, 0:2] -= (0.5 * force * ux, 0.5 * force * uy)

    def _extra_heat(self) -> np.ndarray | None:
        heat = None
        for fault in self._active.values():
            if fault.kind is FaultKind.OVERHEAT:
                heat = np.zeros(len(self.g1.joint_names)) if heat is None else heat
                heat[self.g1.joint_index(fault.parameters["joint"])] += fault.parameters["rate"]
        return heat

    def _extra_drain(self) -> float:
        return float(sum(f.parameters["power"] for f in self._active.values() if f.kind is FaultKind.BATTERY_DRAIN))

    def _base_moving(self) -> bool:
        v = self._base_velocity
        return v.vx != 0.0 or v.vy != 0.0 or v.wz != 0.0

    def _produce_rogue_commands(self, now: float) -> None:
        for fault_id, fault in self._active.items():
            if fault.kind is not FaultKind.ROGUE_PUBLISHER or now + 1e-12 < self._rogue_next.get(fault_id, math.inf):
                continue
            self._rogue_next[fault_id] = now + 1.0 / fault.parameters["rate_hz"]
            positions = self.data.qpos[self.g1.qpos_index].copy()
            i = self.g1.joint_index(fault.parameters["joint"])
            positions[i] = float(
                np.clip(positions[i] + fault.parameters["offset"], self.g1.position_lower[i], self.g1.position_upper[i])
            )
            command = RogueCommand(self.g1.joint_names, positions)
            if self.config.apply_rogue_commands:
                self.apply_joint_command(command.names, command.positions.tolist(), source="rogue_publisher")
            else:
                self._rogue_outbox.append(command)

    def _update_impacts(self) -> None:
        """Peak impact speed: the contact point's approach speed along the floor normal, at contact onset.

        A geom (feet excluded) that touches the floor in this step and did not in the previous one
        has just struck it; its contact points' velocities (body COM velocity plus ω × r, the state
        the contacts were detected in) are taken along the floor's normal. Sliding and rolling on
        the floor do not count, a fast tip of a slowly turning body does.
        """
        data = self.data
        count = data.ncon
        if count == 0:
            self._floor_touching = frozenset()
            return
        geoms = data.contact.geom[:count]
        floor_first = geoms[:, 0] == self.g1.floor_geom
        others = np.where(floor_first, geoms[:, 1], geoms[:, 0])
        rows = np.flatnonzero((floor_first | (geoms[:, 1] == self.g1.floor_geom)) & self._impact_counted[others])
        touching = frozenset(int(g) for g in others[rows])
        new = touching - self._floor_touching
        self._floor_touching = touching
        if not new:
            return
        velocity = np.zeros(6)
        for row in rows:
            geom = int(others[row])
            if geom not in new:
                continue
            contact = data.contact[row]
            up = contact.frame[0:3] if floor_first[row] else -contact.frame[0:3]  # floor normal, out of the floor
            body = int(self.model.geom_bodyid[geom])
            mujoco.mj_objectVelocity(self.model, data, mujoco.mjtObj.mjOBJ_BODY, body, velocity, 0)
            point_velocity = velocity[3:6] + np.cross(velocity[0:3], contact.pos - data.xipos[body])
            speed = max(0.0, -float(point_velocity @ up))
            if speed > self._peak_impact:
                self._peak_impact = speed
                name = mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_BODY, body) or str(body)
                self.peak_impact = ImpactRecord(self.time, name, speed)
