"""`estop` message → actuation request at the hardware side, across processes (issue 8; target p50 ≤ 0.4 ms,
p99 ≤ 2 ms over ≥ 10,000 trials; a safety-relay chain takes ~15 ms).

Two processes on real DDS (loopback only):

* **the guard**: ``ftrobot up guard --params FILE --namespace NS`` in a child process, exactly as on a robot (the
  very :class:`~ftrobot_guard.nodes.guard_node.GuardNode` the product runs, in its own process with a
  single-threaded executor), with a development department's credentials as on a robot
  (bench/bench_guard.py's :func:`~bench_guard.make_bench_files`: robot key and certificate, the committed envelope
  signed for the robot, ``state_directory``, ``guardian_certificates_dir`` holding an operator and a department
  officer, the operator on duty);
* **this process**: a light fake hardware driver (:class:`FakeHardware`: 29 G1 joints at a posture inside the
  envelope's soft ranges, ``joint_states`` and an upright ``imu`` at 500 Hz, ``odom`` 100 Hz,
  ``actuator_temperatures`` 10 Hz, ``battery`` 1 Hz, and the ``hw/set_actuation_mode`` service, which answers
  every request with success and the mode asked for) and an operator (:class:`Operator`, a
  :class:`~bench_guard.GuardianConsole`) that presses the e-stop and issues the guardians' signed commands. The
  MuJoCo simulator is deliberately not used: it would load the CPU and the figure would measure the simulator.

A trial: the operator records ``t0 = time.perf_counter_ns()`` and publishes ``estop`` (std_msgs/Bool true);
the hardware's service callback records the arrival of the first request for a mode other than NORMAL
after ``t0`` (it is HOLD: ESTOP category 1 holds at once, then lowers); latency = arrival − ``t0``. Both
times are read in this process on the same clock. The figure therefore includes everything a real driver
would see: DDS to the guard, the guard's executor (its control timer and 1,000 sensor messages/s compete with the
e-stop), the supervisor, the request over DDS (the guard sends it before it says anything else about the stop:
the SafetyState, the incident and the log line follow it), and this process's executor dispatching it.

Between trials the guard must return to NORMAL. A latched ESTOP is left only by an authenticated guardian RESET,
through the guard's real guardian path: the operator publishes a ``ftrobot_msgs/GuardianCommand`` RESET signed by
the guardian on duty (a fresh nonce, issued now) on ``guardian/command`` and reads the guard's verdict on
``guardian/result``. Each ESTOP opens an incident that the guard re-publishes every 5 s until the department
acknowledges it, so before the RESET the department officer acknowledges it through ``incidents/acknowledge``
(a signed ACKNOWLEDGE); over thousands of trials unacknowledged incidents would pile up. The next trial starts
when the guard is NORMAL and the hardware was last asked for NORMAL (the guard re-anchors, and forwards again, as
soon as the hardware confirms NORMAL; the e-stops it took before that are counted from its log and printed), after
a random settle of 10–30 ms (decorrelated from the guard's timer).
bench/guardian_commands.py runs the same recovery (bench/bench_guard.py).

A trial starts only while the guard is NORMAL; a stop nobody asked for (a detector's) is recorded as a problem,
acknowledged and RESET until its cause has cleared, and the trial is run again.

Then **the floor**: the guard is stopped and a minimal rclpy node (``--relay-child``: same process setup,
``joint_states`` and ``imu`` subscriptions that only keep the message, a 500 Hz timer publishing a Header, and
on ``estop`` a HOLD request at once) takes its place for ``--floor-trials`` trials: what DDS, rclpy's Python
executor and this machine cost with no guard logic at all.

Prints the count, p50/p90/p99/p99.9/max (µs) through the guard and for the floor, when the guard's own "safety
mode ESTOP" log line follows (written after the request was sent, the SafetyState published and the incident
written: its delay after the e-stop and after the request's arrival at the hardware, from the log's wall-clock
stamps), the machine's load average before and after, the wall time, and any problem seen (a request that never
came, a stop nobody asked for, a refused RESET or acknowledgement) with the guard's log lines around it.

    python bench/estop_latency.py [--trials 10000] [--floor-trials 2000] [--json out.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import rclpy
from bench_guard import (
    ENVELOPE,
    START_TIMEOUT_S,
    BenchFiles,
    GuardianConsole,
    Spinner,
    guard_warnings,
    make_bench_files,
    recover,
    ros_environment,
    start_guard,
    wait_started,
)
from ftrobot_msgs.msg import Anomaly, JointTemperatures, SafetyState
from ftrobot_msgs.srv import SetActuationMode
from nav_msgs.msg import Odometry
from rclpy.context import Context
from rclpy.node import Node
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import BatteryState, Imu, JointState
from std_msgs.msg import Bool, Header
from trajectory_msgs.msg import JointTrajectory

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.ros.qos_profiles import COMMANDS, EVENTS, SENSOR_DATA
from ftrobot_guard.ros.stack_runner import log_tail, stop_processes
from ftrobot_guard.safety.envelope import load_envelope

GIL_SWITCH_INTERVAL_S = 0.0005   # as the simulator node: a woken executor thread waits at most this for the GIL
SENSOR_RATE_HZ = 500.0
# Sensor topics and their periods in 500 Hz ticks (joint_states and imu every tick).
ODOM_EVERY, TEMPERATURE_EVERY, BATTERY_EVERY = 5, 50, 500
STANDING_HEIGHT_M = 0.79
TRIAL_TIMEOUT_S = 2.0


# ---------------------------------------------------------------------------------------------- setup


STAMP = struct.Struct("<iI")   # builtin_interfaces/Time in CDR: int32 sec, uint32 nanosec


def standing_posture() -> tuple[list[str], list[float]]:
    """The envelope's 29 joints in model order, each at 0 rad (every soft range of the G1 envelope contains 0;
    checked here, and a joint whose soft range did not would sit at its middle)."""
    joints = load_envelope(ENVELOPE).joints
    names = list(joints.names)
    positions = []
    for lower, upper in zip(joints.soft_lower.tolist(), joints.soft_upper.tolist(), strict=True):
        positions.append(0.0 if lower < 0.0 < upper else 0.5 * (lower + upper))
    return names, positions


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


# ---------------------------------------------------------------------------------------------- fake hardware


class FakeHardware:
    """A light hardware driver: the G1's sensor topics at their rates and ``hw/set_actuation_mode``.

    The posture is static (the measured posture never follows commands: the guard's tracking check sees the
    commanded offset, which the benches keep small). The service answers at once with success and the mode
    asked for, and records ``(perf_counter_ns, mode)`` of every request on arrival. With ``record_commands``
    the node also records the arrival of every ``hw/joint_command`` and ``bench/direct_joint_command``
    (the gate bench's direct path) as raw bytes (:meth:`arrivals` reads them afterwards). The service and subscriptions run on their
    own executor thread; sensors are published from a separate thread on an absolute 500 Hz schedule.
    """

    def __init__(self, context: Context, namespace: str, names: Sequence[str], positions: Sequence[float],
                 record_commands: bool = False) -> None:
        self.node = Node("bench_hardware", context=context, namespace=namespace)
        self.names = list(names)
        self.positions = list(positions)
        self.requests: list[tuple[int, int]] = []
        self.mode = ActuationMode.HOLD
        self.armed_after: int | None = None
        self.hit: tuple[int, int] | None = None
        self.hit_event = threading.Event()
        self.guarded: list[tuple[int, bytes]] = []
        self.direct: list[tuple[int, bytes]] = []
        self.sensor_overruns = 0
        self._joint_pub = self.node.create_publisher(JointState, "joint_states", SENSOR_DATA)
        self._imu_pub = self.node.create_publisher(Imu, "imu", SENSOR_DATA)
        self._odom_pub = self.node.create_publisher(Odometry, "odom", SENSOR_DATA)
        self._temperature_pub = self.node.create_publisher(JointTemperatures, "actuator_temperatures", SENSOR_DATA)
        self._battery_pub = self.node.create_publisher(BatteryState, "battery", SENSOR_DATA)
        self.node.create_service(SetActuationMode, "hw/set_actuation_mode", self._on_set_mode)
        if record_commands:
            self.node.create_subscription(JointTrajectory, "hw/joint_command", self._on_guarded, COMMANDS, raw=True)
            self.node.create_subscription(JointTrajectory, "bench/direct_joint_command", self._on_direct, COMMANDS,
                                          raw=True)
        self._stop = threading.Event()
        self._spinner: Spinner | None = None
        self._sensors: threading.Thread | None = None

    def start(self, context: Context) -> None:
        self._spinner = Spinner(context, self.node, "bench_hardware")
        self._sensors = threading.Thread(target=self._publish_sensors, name="bench_sensors", daemon=True)
        self._sensors.start()

    def stop(self) -> None:
        self._stop.set()
        if self._sensors is not None:
            self._sensors.join(timeout=5.0)
        if self._spinner is not None:
            self._spinner.stop()
        self.node.destroy_node()

    @property
    def error(self) -> BaseException | None:
        return self._spinner.error if self._spinner is not None else None

    # -- the hardware contract

    def _on_set_mode(self, request: SetActuationMode.Request,
                     response: SetActuationMode.Response) -> SetActuationMode.Response:
        arrived = time.perf_counter_ns()
        mode = int(request.mode)
        self.requests.append((arrived, mode))
        armed = self.armed_after
        if armed is not None and arrived >= armed and mode != ActuationMode.NORMAL:
            self.armed_after = None
            self.hit = (arrived, mode)
            self.hit_event.set()
        try:
            self.mode = ActuationMode(mode)
        except ValueError:
            response.success, response.mode, response.message = False, int(self.mode), f"unknown mode {mode}"
            return response
        response.success, response.mode, response.message = True, mode, "ok"
        return response

    def arm(self) -> int:
        """Start a trial: the first non-NORMAL request from now on is the hit. Returns t0 (perf_counter_ns)."""
        self.hit = None
        self.hit_event.clear()
        t0 = time.perf_counter_ns()
        self.armed_after = t0
        return t0

    def _on_guarded(self, data: bytes) -> None:
        self.guarded.append((time.perf_counter_ns(), data))

    def _on_direct(self, data: bytes) -> None:
        self.direct.append((time.perf_counter_ns(), data))

    @staticmethod
    def arrivals(received: Sequence[tuple[int, bytes]]) -> dict[tuple[float, ...], int]:
        """{first point's positions: arrival ns} of raw JointTrajectory messages (deserialized after the window,
        so that the hot path only takes the bytes)."""
        out: dict[tuple[float, ...], int] = {}
        for arrived, data in received:
            msg = deserialize_message(data, JointTrajectory)
            if msg.points:
                out[tuple(msg.points[0].positions)] = arrived
        return out

    # -- sensors

    def _publish_sensors(self) -> None:
        joints = JointState(name=self.names, position=self.positions, velocity=[0.0] * len(self.names),
                            effort=[0.0] * len(self.names))
        imu = Imu()
        imu.header.frame_id = "imu_in_pelvis"
        imu.orientation.w = 1.0
        imu.linear_acceleration.z = 9.81   # specific force of a body at rest, upright
        odom = Odometry(child_frame_id="pelvis")
        odom.header.frame_id = "odom"
        odom.pose.pose.position.z = STANDING_HEIGHT_M
        odom.pose.pose.orientation.w = 1.0
        temperatures = JointTemperatures(name=self.names, temperature=[40.0] * len(self.names))
        battery = BatteryState(voltage=50.0, current=-2.0, percentage=0.9, present=True, temperature=math.nan,
                               power_supply_status=BatteryState.POWER_SUPPLY_STATUS_DISCHARGING)
        # Serialized once; each publication patches the header stamp, the first field after the 4-byte CDR
        # encapsulation header of every one of these types (a light driver: the bench must not load the machine).
        raw = {name: bytearray(serialize_message(msg)) for name, msg in (
            ("joints", joints), ("imu", imu), ("odom", odom), ("temperatures", temperatures), ("battery", battery))}
        clock = self.node.get_clock()
        period_ns = round(1e9 / SENSOR_RATE_HZ)
        next_ns = time.monotonic_ns()
        tick = 0

        def stamped(name: str, stamp: bytes) -> bytes:
            data = raw[name]
            data[4:12] = stamp
            return bytes(data)

        while not self._stop.is_set():
            sec, nanosec = divmod(clock.now().nanoseconds, 1_000_000_000)
            stamp = STAMP.pack(sec, nanosec)
            self._joint_pub.publish(stamped("joints", stamp))
            self._imu_pub.publish(stamped("imu", stamp))
            if tick % ODOM_EVERY == 0:
                self._odom_pub.publish(stamped("odom", stamp))
            if tick % TEMPERATURE_EVERY == 0:
                self._temperature_pub.publish(stamped("temperatures", stamp))
            if tick % BATTERY_EVERY == 0:
                self._battery_pub.publish(stamped("battery", stamp))
            tick += 1
            next_ns += period_ns
            wait = next_ns - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait * 1e-9)
            elif wait < -50_000_000:   # more than 50 ms behind (process not scheduled): restart the schedule
                self.sensor_overruns += 1
                next_ns = time.monotonic_ns()


# ---------------------------------------------------------------------------------------------- the floor


def relay_child(namespace: str) -> int:
    """The floor: a minimal rclpy node with the guard's executor shape and no guard logic.

    Same process setup as ``ftrobot up guard`` (own context, single-threaded NodeSpinner); subscribes
    ``joint_states`` and ``imu`` (sensor QoS, callbacks that only keep the message), runs a timer at the
    guard's control rate that publishes a Header (as ``guard/alive``), and on ``estop`` true calls
    ``hw/set_actuation_mode`` HOLD at once. The difference between the guard's figure and this one is what
    the guard's own work (and its larger node) adds."""
    from ftrobot_guard.ros.node_spinner import NodeSpinner, stop_nodes
    from ftrobot_guard.ros.ros_arguments import init_context

    stop = threading.Event()

    def _on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    context = Context()
    init_context(context, ["relay"])
    node = Node("relay", context=context, namespace=namespace)
    kept: dict[str, Any] = {}
    alive = node.create_publisher(Header, "relay/alive", SENSOR_DATA)
    hardware = node.create_client(SetActuationMode, "hw/set_actuation_mode")
    node.create_subscription(JointState, "joint_states", lambda msg: kept.__setitem__("joint_states", msg),
                             SENSOR_DATA)
    node.create_subscription(Imu, "imu", lambda msg: kept.__setitem__("imu", msg), SENSOR_DATA)

    def _on_estop(msg: Bool) -> None:
        if msg.data and hardware.service_is_ready():
            hardware.call_async(SetActuationMode.Request(mode=int(ActuationMode.HOLD), reason="relay: estop"))

    node.create_subscription(Bool, "estop", _on_estop, COMMANDS)
    node.create_timer(1.0 / SENSOR_RATE_HZ, lambda: alive.publish(Header(stamp=node.get_clock().now().to_msg())))
    spinner = NodeSpinner(context, [node], threads=1, events=True)  # as the guard runs
    try:
        spinner.spin_until(stop)
    finally:
        spinner.shutdown()
        stop_nodes([node], context)
    return 0


# ---------------------------------------------------------------------------------------------- operator


class Operator(GuardianConsole):
    """Presses the e-stop, signs the guardians' commands (bench_guard.GuardianConsole), and watches the guard's
    state for stops nobody asked for and its anomalies."""

    def __init__(self, context: Context, namespace: str, files: BenchFiles) -> None:
        super().__init__(context, namespace, files, name="bench_operator")
        self.unexpected: list[str] = []         # states nobody asked for (outside a trial's ESTOP)
        self.expect_estop = False
        self.anomalies: dict[str, int] = {}
        self.node.create_subscription(Anomaly, "anomalies", self._on_anomaly, EVENTS)

    def _on_state(self, msg: SafetyState) -> None:
        previous = self.state
        super()._on_state(msg)
        if msg.mode_name in ("NORMAL", "BOOT") or (msg.mode_name == "ESTOP" and self.expect_estop):
            return
        if previous is None or (previous.mode_name, previous.transition_count) != (msg.mode_name,
                                                                                   msg.transition_count):
            self.unexpected.append(f"{msg.mode_name} from {msg.source}: {msg.cause}")

    def _on_anomaly(self, msg: Anomaly) -> None:
        if msg.active and msg.detector != "gate":
            key = f"{msg.kind} ({msg.subject})"
            self.anomalies[key] = self.anomalies.get(key, 0) + 1


def summary(latencies_us: Sequence[float]) -> dict[str, float]:
    values = sorted(latencies_us)
    return {
        "count": len(values), "p50_us": percentile(values, 0.50), "p90_us": percentile(values, 0.90),
        "p99_us": percentile(values, 0.99), "p999_us": percentile(values, 0.999),
        "max_us": values[-1] if values else math.nan, "mean_us": statistics.fmean(values) if values else math.nan,
        "within_0p4ms": sum(1 for v in values if v <= 400.0), "within_2ms": sum(1 for v in values if v <= 2000.0),
    }


def _progress(label: str, done: int, latencies: Sequence[float], started: float) -> None:
    values = sorted(latencies)
    print(f"  {label} {done:6d} trials, {time.monotonic() - started:6.1f} s: p50 {percentile(values, 0.5):6.0f} µs, "
          f"p99 {percentile(values, 0.99):6.0f} µs, max {values[-1] if values else math.nan:6.0f} µs", flush=True)


def after_trial(operator: Operator, hardware: FakeHardware, log_path: Path, problems: list[str],
                label: str) -> int:
    """Acknowledge the open incidents and RESET (signed, on ``guardian/command``) until the guard is NORMAL and the
    hardware was asked for NORMAL. Returns the RESETs that had to be repeated; problems go to ``problems``."""
    outcome = recover(operator, hardware, log_path)
    problems.extend(f"{label}: {problem}" for problem in outcome.problems)
    if outcome.resets > 1:
        problems.append(f"{label}: {outcome.resets} RESETs to return to NORMAL; the first answered: "
                        f"{outcome.first_answer}")
    return outcome.resets - 1


def guard_trials(trials: int, hardware: FakeHardware, operator: Operator, guard: subprocess.Popen[bytes],
                 log_path: Path) -> dict[str, Any]:
    """The figure: e-stop → stop request through the real guard; between trials the officer acknowledges the
    incident and the operator RESETs (both signed, through the guard's guardian path).

    A trial starts only while the guard is NORMAL and the hardware was asked for NORMAL. A stop nobody asked for
    (a detector's, seen before the e-stop) is recorded, acknowledged and RESET (retried until its cause has
    cleared), and the trial is run again."""
    latencies: list[float] = []
    walls: list[tuple[int, int]] = []   # (e-stop published, request arrived), wall-clock ns
    modes: dict[str, int] = {}
    problems: list[str] = []
    repeated_resets = missed = 0
    started = time.monotonic()
    while len(latencies) + missed < trials:
        trial = len(latencies) + missed
        if guard.poll() is not None:
            raise RuntimeError(f"the guard process ended ({guard.returncode}):\n{log_tail(log_path)}")
        time.sleep(random.uniform(0.010, 0.030))
        if operator.mode() != "NORMAL" or hardware.mode != ActuationMode.NORMAL:
            stopped = f"{operator.mode()} ({operator.state.cause if operator.state else ''})"
            problems.append(f"before trial {trial}: a stop nobody asked for: {stopped}")
            repeated_resets += after_trial(operator, hardware, log_path, problems, f"before trial {trial}")
            continue
        operator.expect_estop = True
        t0 = hardware.arm()
        wall = time.time_ns()
        operator.estop.publish(Bool(data=True))
        if hardware.hit_event.wait(TRIAL_TIMEOUT_S) and hardware.hit is not None:
            arrived, mode = hardware.hit
            latencies.append((arrived - t0) / 1000.0)
            walls.append((wall, wall + arrived - t0))
            modes[ActuationMode(mode).name] = modes.get(ActuationMode(mode).name, 0) + 1
        else:
            hardware.armed_after = None
            missed += 1
            # A stop the guard had already asked for just before t0 (a detector's, its SafetyState not yet seen
            # here) makes the e-stop ask for nothing new: say what the hardware was last asked before t0.
            before = [(arrived, mode) for arrived, mode in list(hardware.requests) if arrived < t0]
            last = (f"{ActuationMode(before[-1][1]).name} {(t0 - before[-1][0]) / 1e6:.1f} ms before the e-stop"
                    if before else "nothing")
            problems.append(f"trial {trial}: no stop request at the hardware within {TRIAL_TIMEOUT_S:g} s of the "
                            f"e-stop (mode {operator.mode()}; last asked: {last})\n{log_tail(log_path)}")
        if not operator.wait_for(lambda: operator.mode() == "ESTOP" and bool(operator.open_incidents),
                                 TRIAL_TIMEOUT_S):
            problems.append(f"trial {trial}: mode {operator.mode()}, {len(operator.open_incidents)} open "
                            f"incident(s) {TRIAL_TIMEOUT_S:g} s after the e-stop")
        repeated_resets += after_trial(operator, hardware, log_path, problems, f"trial {trial}")
        operator.expect_estop = False
        done = len(latencies) + missed
        if done % 1000 == 0 or done == trials:
            _progress("guard", done, latencies, started)
    return {**summary(latencies), "trials": trials, "modes_requested": modes, "problems": problems,
            "missed": missed, "repeated_resets": repeated_resets, "incidents_acknowledged": operator.acknowledged,
            "seconds": time.monotonic() - started, "walls": walls}


def split_at_guard_log(walls: Sequence[tuple[int, int]], log_text: str) -> dict[str, Any] | None:
    """When the guard's "safety mode ESTOP" log line follows (wall clock, the log's timestamps): the line is
    written in the e-stop callback after the request was sent, the SafetyState published and the incident written
    to disk. Each trial takes the first ESTOP line after its e-stop and before the next trial's; returns its delay
    after the e-stop and after the request's arrival at the hardware (negative: the line came first)."""
    stamps = []
    for line in log_text.splitlines():
        if "safety mode ESTOP" in line:
            try:
                stamps.append(round(float(line.split("] [", 1)[1].split("]", 1)[0]) * 1e9))
            except (IndexError, ValueError):
                continue
    stamps.sort()
    after_estop: list[float] = []
    after_arrival: list[float] = []
    index = 0
    for trial, (sent, arrived) in enumerate(walls):
        following = walls[trial + 1][0] if trial + 1 < len(walls) else None
        while index < len(stamps) and stamps[index] < sent:
            index += 1
        if index < len(stamps) and (following is None or stamps[index] < following):
            after_estop.append((stamps[index] - sent) / 1000.0)
            after_arrival.append((stamps[index] - arrived) / 1000.0)
    if not after_estop:
        return None
    return {"estop_to_guard_log": summary(after_estop), "arrival_to_guard_log": summary(after_arrival)}


def estops_before_reanchoring(log_text: str) -> tuple[int, int]:
    """(e-stops, of which the guard took while not yet forwarding): from the guard's log, each "safety mode ESTOP"
    line after the guard's RESET line but before its "commands re-anchored ... forwarding" line. The bench waits
    for NORMAL and the hardware's NORMAL request only; this says whether re-anchoring had also happened."""
    estops = early = 0
    forwarding = False
    for line in log_text.splitlines():
        if "safety mode " not in line:
            continue
        if "safety mode ESTOP" in line:
            estops += 1
            early += 0 if forwarding else 1
            forwarding = False
        elif "re-anchored" in line:
            forwarding = True
        elif "safety mode NORMAL" not in line:
            forwarding = False
    return estops, early


def floor_trials(trials: int, hardware: FakeHardware, operator: Operator, relay: subprocess.Popen[bytes],
                 log_path: Path) -> dict[str, Any]:
    """The floor: the same e-stop → request through the minimal relay (no RESET needed)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:   # warm-up: until the relay's client has discovered the service and a request arrives
        hardware.arm()
        operator.estop.publish(Bool(data=True))
        if hardware.hit_event.wait(0.5):
            break
        if time.monotonic() > deadline or relay.poll() is not None:
            raise RuntimeError(f"the relay never sent a request:\n{log_tail(log_path)}")
    latencies: list[float] = []
    missed = 0
    started = time.monotonic()
    for trial in range(trials):
        time.sleep(random.uniform(0.010, 0.030))
        t0 = hardware.arm()
        operator.estop.publish(Bool(data=True))
        if hardware.hit_event.wait(2.0) and hardware.hit is not None:
            latencies.append((hardware.hit[0] - t0) / 1000.0)
        else:
            hardware.armed_after = None
            missed += 1
        if (trial + 1) % 1000 == 0 or trial + 1 == trials:
            _progress("floor", trial + 1, latencies, started)
    return {**summary(latencies), "trials": trials, "missed": missed, "seconds": time.monotonic() - started}


def run(trials: int, floor: int, domain: int, keep: Path | None) -> dict[str, Any]:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    names, positions = standing_posture()
    started = time.monotonic()
    load_before = load_average()
    result: dict[str, Any] = {"load_before": load_before}
    me = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="ftrobot-estop-") as tmp:
        directory = keep or Path(tmp)
        files = make_bench_files(directory)
        namespace = f"/estop_{uuid.uuid4().hex[:6]}"
        context = Context()
        rclpy.init(context=context, domain_id=domain)
        hardware = FakeHardware(context, namespace, names, positions)
        operator = Operator(context, namespace, files)
        hardware.start(context)
        operator_spin = Spinner(context, operator.node, "bench_operator")
        guard_log, relay_log = directory / "guard.log", directory / "relay.log"
        children: list[subprocess.Popen[bytes]] = []
        try:
            children.append(start_guard(files, namespace, domain, guard_log))
            wait_started(operator, hardware, children[0], guard_log)
            print(f"guard NORMAL after {time.monotonic() - started:.1f} s; {trials} trials (load {load_before})",
                  flush=True)
            result["guard"] = guard_trials(trials, hardware, operator, children[0], guard_log)
            result["load_after_guard"] = load_average()
            stop_processes(children[0])
            if floor > 0:
                with open(relay_log, "wb") as log:
                    children.append(subprocess.Popen([sys.executable, me, "--relay-child", namespace], stdout=log,
                                                     stderr=subprocess.STDOUT, env=ros_environment(domain)))
                operator.expect_estop = True
                result["floor"] = floor_trials(floor, hardware, operator, children[1], relay_log)
                result["load_after_floor"] = load_average()
            for error in (hardware.error, operator_spin.error):
                if error is not None:
                    raise error
        finally:
            stop_processes(*children)
            operator_spin.stop()
            hardware.stop()
            operator.node.destroy_node()
            rclpy.shutdown(context=context)
        log_text = guard_log.read_text(encoding="utf-8", errors="replace")
    result["split"] = split_at_guard_log(result["guard"].pop("walls"), log_text)
    result["estops_logged"], result["estops_before_reanchoring"] = estops_before_reanchoring(log_text)
    result.update(
        total_seconds=time.monotonic() - started, unexpected_states=operator.unexpected,
        anomalies_raised=operator.anomalies, sensor_overruns=hardware.sensor_overruns,
        guard_warnings=guard_warnings(log_text))
    return result


def _print_figure(label: str, figure: dict[str, Any]) -> None:
    print(f"  {label}: p50 {figure['p50_us']:.0f} µs, p90 {figure['p90_us']:.0f} µs, p99 {figure['p99_us']:.0f} µs, "
          f"p99.9 {figure['p999_us']:.0f} µs, max {figure['max_us']:.0f} µs, mean {figure['mean_us']:.0f} µs "
          f"({figure['count']}/{figure['trials']} trials, {figure['seconds']:.0f} s; within 0.4 ms "
          f"{figure['within_0p4ms']}, within 2 ms {figure['within_2ms']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10000, help="e-stop trials through the guard")
    parser.add_argument("--floor-trials", type=int, default=2000,
                        help="e-stop trials through the minimal relay (the platform's floor; 0: skip)")
    parser.add_argument("--domain", type=int, default=120 + os.getpid() % 80)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="keep the bench's files and the logs in this (new) directory")
    parser.add_argument("--relay-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay_child is not None:
        return relay_child(args.relay_child)
    if args.trials < 1 or args.floor_trials < 0:
        parser.error("--trials must be at least 1 and --floor-trials at least 0")
    result = run(args.trials, args.floor_trials, args.domain, args.keep)
    guard = result["guard"]
    print(f"estop -> actuation request at the hardware side (modes requested: {guard['modes_requested']}); "
          "target p50 <= 400 µs, p99 <= 2000 µs")
    _print_figure("through the guard", guard)
    split = result["split"]
    if split is not None:
        to_log, after_arrival = split["estop_to_guard_log"], split["arrival_to_guard_log"]
        print(f"    the guard's ESTOP log line (written after the request, the SafetyState and the incident): "
              f"p50 {to_log['p50_us']:.0f} µs, p99 {to_log['p99_us']:.0f} µs after the e-stop; p50 "
              f"{after_arrival['p50_us']:+.0f} µs, p99 {after_arrival['p99_us']:+.0f} µs after the request's arrival "
              f"at the hardware (wall clock, log timestamps; {to_log['count']} trials)")
    print(f"    e-stops the guard took before it had re-anchored after the last RESET (not yet forwarding): "
          f"{result['estops_before_reanchoring']} of {result['estops_logged']} (from its log)")
    if "floor" in result:
        _print_figure("floor (minimal rclpy relay, same executor shape)", result["floor"])
    print(f"  load before {result['load_before']}; after the guard trials {result['load_after_guard']}")
    print(f"  {result['total_seconds']:.0f} s in all; e-stops without a request: {guard['missed']}; RESETs that had "
          f"to be repeated: {guard['repeated_resets']}; incidents acknowledged: {guard['incidents_acknowledged']}; sensor schedule restarts (this process not scheduled for "
          f"> 50 ms: a real gap in the guard's inputs): {result['sensor_overruns']}")
    for label, items in (("problems", guard["problems"]), ("unexpected states", result["unexpected_states"]),
                         ("guard warnings", result["guard_warnings"])):
        if items:
            print(f"  {label}: {len(items)}")
            for item in items[:10]:
                print(f"    {item}")
    if result["anomalies_raised"]:
        print(f"  anomalies raised by the detectors: {result['anomalies_raised']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    ok = guard["missed"] == 0 and not result["unexpected_states"] and not guard["problems"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
