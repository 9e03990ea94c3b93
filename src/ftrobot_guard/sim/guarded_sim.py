"""The simulated G1 with the guard in the loop, without ROS: for the fault matrix, benchmarks and pictures.

:class:`GuardedSim` steps a :class:`~ftrobot_guard.sim.humanoid_sim.HumanoidSim` and feeds a
:class:`~ftrobot_guard.safety.guard_core.GuardCore` what the simulator node would publish, at the
node's rates and with the same injected dropouts and delays; the guard's outputs go back to the
simulator as the hardware contract takes them (joint commands, actuation modes, guard/alive). The
guard node is a thin adapter around the same core, so what is measured here is what the node decides,
minus DDS. An optional controller stands in for the robot's own controller on ``guard/in/joint_command``.

The guard takes its inputs as the node does: commands, hardware states, service replies and the graph at
once; sensor readings are kept as they arrive and handed over at the guard's control tick
(``control_rate_hz``, the node's 100 Hz by default), the newest of each topic and the earlier
``joint_states`` for the posture estimate (safety/tick_intake.py, the node's own policy); ``guard/alive``
goes out at each tick, as the node sends it.

The ROS graph is emulated for the intrusion check: the guard publishes on ``hw/joint_command``, and the
simulator's ``rogue_controller`` does too while its fault is active.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.safety.anomaly_detectors import AnomalyReport
from ftrobot_guard.safety.command_gate import BaseGateDecision, JointGateDecision
from ftrobot_guard.safety.envelope import Envelope
from ftrobot_guard.safety.guard_core import GuardConfig, GuardCore
from ftrobot_guard.safety.intrusion_check import IntrusionCheck, Publisher
from ftrobot_guard.safety.supervisor import SupervisorOutput
from ftrobot_guard.safety.tick_intake import DEFAULT_CONTROL_RATE_HZ, TickIntake
from ftrobot_guard.sim.delay_queue import DelayQueue
from ftrobot_guard.sim.faults import FaultKind
from ftrobot_guard.sim.humanoid_sim import HumanoidSim, SimConfig
from ftrobot_guard.sim.publication_schedule import PublicationSchedule

NAMESPACE = "/robot"
GUARD_NODE = f"{NAMESPACE}/guard"
HW_JOINT_COMMAND = f"{NAMESPACE}/hw/joint_command"
SENSOR_RATES_HZ = {"joint_states": 500.0, "imu": 500.0, "odom": 100.0, "actuator_temperatures": 10.0, "battery": 1.0}

# A controller: (sim time) -> (joint names, positions) to send on guard/in/joint_command, or None.
Controller = Callable[[float], tuple[tuple[str, ...], np.ndarray] | None]


@dataclass(frozen=True)
class _Arrival:
    """A sensor reading that reached the guard, handed over at its next tick: ``deliver`` as the newest of its
    topic, ``deliver_earlier`` (joint_states only) as an earlier one for the posture estimate."""

    deliver: Callable[[], None]
    deliver_earlier: Callable[[], None] | None = None


@dataclass
class GuardedRecord:
    """What the guard said, in sim time."""

    states: list[tuple[float, SupervisorOutput]] = field(default_factory=list)
    anomalies: list[tuple[float, AnomalyReport]] = field(default_factory=list)
    actuation_requests: list[tuple[float, ActuationMode, str]] = field(default_factory=list)
    logs: list[tuple[float, str, str]] = field(default_factory=list)
    forwarded: int = 0                                          # commands sent to the hardware (any source)
    controller_forwarded: list[float] = field(default_factory=list)  # when the controller's commands got through

    def raised(self, kind: str | None = None) -> list[tuple[float, AnomalyReport]]:
        return [(t, a) for t, a in self.anomalies if a.active and (kind is None or a.kind == kind)]


class GuardedSim:
    """HumanoidSim + GuardCore, stepped together (2 ms physics steps; the guard ticks at ``control_rate_hz``)."""

    def __init__(self, envelope: Envelope, sim_config: SimConfig | None = None, guard_config: GuardConfig | None = None,
                 controller: Controller | None = None, command_rate_hz: float = 100.0,
                 sensor_rates_hz: dict[str, float] | None = None,
                 control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ) -> None:
        if not control_rate_hz > 0.0:
            raise ValueError(f"control_rate_hz must be > 0, got {control_rate_hz!r}")
        self.sim = HumanoidSim(sim_config or SimConfig())
        self.record = GuardedRecord()
        self._schedule = PublicationSchedule(sensor_rates_hz or SENSOR_RATES_HZ)
        self._delayed: DelayQueue[tuple[str, _Arrival]] = DelayQueue()
        self._arrived: TickIntake[_Arrival] = TickIntake()
        self._control_period = 1.0 / control_rate_hz
        self._next_tick = 0.0
        self._replies: list[Callable[[], None]] = []
        self._controller = controller
        self._command_period = 1.0 / command_rate_hz
        self._next_command = 0.0
        self._rogue_seen = False
        self._graph_reported = False
        self.wall_start = dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC)  # 11:00 in Shanghai: inside service hours
        intrusion = IntrusionCheck([GUARD_NODE], {}, namespace=NAMESPACE)
        self.core = GuardCore(self, envelope, "", self.sim.time, guard_config, intrusion)
        self._mode_changes_taken = 0
        self.core.hardware_state(self.sim.time, int(self.sim.mode), "start", "driver started", 0)  # hw/actuation_state

    # ------------------------------------------------------------------ GuardSink

    def forward_joint_command(self, decision: JointGateDecision) -> None:
        self.record.forwarded += 1
        velocities = decision.velocities.tolist() if decision.velocities is not None else ()
        efforts = decision.efforts.tolist() if decision.efforts is not None else ()
        outcome = self.sim.apply_joint_command(decision.names, decision.positions.tolist(), velocities, efforts)
        if not outcome.success and "NORMAL" not in outcome.message:
            self.record.logs.append((self.sim.time, "warn", f"hardware refused a forwarded command: {outcome.message}"))

    def forward_base_velocity(self, decision: BaseGateDecision) -> None:
        self.sim.set_base_velocity([decision.vx, decision.vy, 0.0], [0.0, 0.0, decision.wz])

    def request_actuation(self, mode: ActuationMode, reason: str) -> bool:
        self.record.actuation_requests.append((self.sim.time, mode, reason))
        outcome = self.sim.set_actuation_mode(int(mode), reason=reason, source="request")
        in_effect = outcome.mode if outcome.mode is not None else self.sim.mode
        # The reply comes back a step later, as a service reply would.
        self._replies.append(lambda: self.core.actuation_reply(self.sim.time, mode, outcome.success, int(in_effect),
                                                               outcome.message))
        return True

    def publish_anomaly(self, report: AnomalyReport) -> None:
        self.record.anomalies.append((self.sim.time, report))

    def publish_state(self, output: SupervisorOutput) -> None:
        self.record.states.append((self.sim.time, output))

    def log(self, level: str, text: str) -> None:
        self.record.logs.append((self.sim.time, level, text))

    # ------------------------------------------------------------------ stepping

    def local_time(self) -> dt.datetime:
        return self.wall_start + dt.timedelta(seconds=self.sim.time)

    def run_for(self, seconds: float, on_step: Callable[[GuardedSim], None] | None = None) -> None:
        steps = round(seconds / self.sim.timestep)
        for _ in range(steps):
            if on_step is not None:
                on_step(self)
            self.step()

    def run_until(self, condition: Callable[[GuardedSim], bool], timeout: float) -> bool:
        end = self.sim.time + timeout
        while self.sim.time < end:
            if condition(self):
                return True
            self.step()
        return condition(self)

    def step(self) -> None:
        sim = self.sim
        sim.step()
        now = sim.time
        replies, self._replies = self._replies, []
        for reply in replies:
            reply()
        changes = sim.recorder.mode_changes[self._mode_changes_taken:]
        for change in changes:  # hw/actuation_state, as the simulator node publishes it
            self._mode_changes_taken += 1
            self.core.hardware_state(now, int(change.mode), change.source, change.reason, self._mode_changes_taken)
        for topic, arrival in self._delayed.pop_due(now):
            self._arrived.keep(topic, arrival)
        for topic in self._schedule.due(now):
            if sim.topic_dropped(topic):
                continue
            arrival = self._reading(topic, now)
            delay = sim.topic_delay(topic)
            if delay > 0.0:
                self._delayed.put(now + delay, (topic, arrival))
            else:
                self._arrived.keep(topic, arrival)
        self._graph(now)
        if self._controller is not None and now + 1e-9 >= self._next_command:
            self._next_command = now + self._command_period
            command = self._controller(now)
            if command is not None:
                names, positions = command
                decision = self.core.joint_command(now, now, names, positions.tolist(), (), (),
                                                   local_time=self.local_time())
                if decision is not None and decision.forwarded:
                    self.record.controller_forwarded.append(now)
        if now + 1e-9 >= self._next_tick:
            self._next_tick += self._control_period
            if self._next_tick <= now:   # a period shorter than the physics step: once per step
                self._next_tick = now + self._control_period
            self._control_tick(now)

    def _control_tick(self, now: float) -> None:
        """The guard node's control tick: guard/alive, then the sensors that arrived since the last tick, then
        the guard core's own tick."""
        if self.core.keeps_hardware_alive:   # as the guard node: withheld while a stop goes unconfirmed
            self.sim.guard_alive()
        earlier, newest = self._arrived.take()
        for arrival in earlier:
            if arrival.deliver_earlier is not None:
                arrival.deliver_earlier()
        for arrival in newest.values():
            arrival.deliver()
        self.core.tick(now, self.wall_start.timestamp() + now)

    def _reading(self, topic: str, stamp: float) -> _Arrival:
        sim, core = self.sim, self.core
        if topic == "joint_states":
            js = sim.joint_state()
            return _Arrival(lambda: core.joint_states(sim.time, stamp, js.names, js.position.tolist(),
                                                      js.velocity.tolist(), js.effort.tolist()),
                            lambda: core.earlier_joint_states(stamp, js.names, js.position.tolist()))
        if topic == "imu":
            imu = sim.imu()
            w, x, y, z = imu.orientation_wxyz.tolist()
            return _Arrival(lambda: core.imu(sim.time, stamp, (x, y, z, w), imu.angular_velocity.tolist(),
                                             imu.linear_acceleration.tolist()))
        if topic == "odom":
            odom = sim.odom()
            qw, qx, qy, qz = odom.orientation_wxyz.tolist()
            yaw = float(np.arctan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz)))
            return _Arrival(lambda: core.odom(sim.time, stamp, float(odom.position[0]), float(odom.position[1]), yaw,
                                              float(odom.linear_velocity[0]), float(odom.linear_velocity[1]),
                                              float(odom.angular_velocity[2]), float(odom.position[2])))
        if topic == "actuator_temperatures":
            temperatures = sim.temperatures()
            return _Arrival(lambda: core.temperatures(sim.time, stamp, sim.joint_names, temperatures.tolist()))
        battery = sim.battery()
        return _Arrival(lambda: core.battery(sim.time, stamp, float(battery.percentage)))

    def _graph(self, now: float) -> None:
        rogue = any(f.kind is FaultKind.ROGUE_PUBLISHER for f in self.sim.active_faults())
        if rogue != self._rogue_seen or not self._graph_reported:
            self._graph_reported = True
            self._rogue_seen = rogue
            publishers = [Publisher("guard", NAMESPACE)]
            if rogue:
                publishers.append(Publisher("rogue_controller", NAMESPACE))
            self.core.publishers(now, HW_JOINT_COMMAND, publishers)

    # ------------------------------------------------------------------ results

    def mode_name(self) -> str:
        return self.core.output.mode.name

    def summary(self) -> dict[str, Any]:
        truth = self.sim.ground_truth()
        return {"mode": self.mode_name(), "actuation": self.sim.mode.name, "fallen": truth.fallen,
                "peak_impact_speed": truth.peak_impact_speed, "anomalies": [a.kind for _, a in self.record.raised()]}
