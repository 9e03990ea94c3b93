"""The real guard for the benches: ``ftrobot up guard`` in a child process, with a development department's
credentials as on a robot, and a guardian console that talks to it the way guardians do.

* :func:`make_bench_files`: a department; the robot's key and certificate; an operator (on duty: ESTOP, RESET)
  and a department officer (ACKNOWLEDGE) registered in the robot's guardian registry
  (``guardian_certificates_dir``); the committed G1 envelope signed for the robot; a ``state_directory``; and
  the guard's params file (as tests/guard_harness.py builds them);
* :func:`start_guard`: ``ftrobot up guard --params FILE --namespace NS`` on a bench's own ROS domain;
* :class:`GuardianConsole`: signed ``ftrobot_msgs/GuardianCommand`` out on ``guardian/command`` (built by
  :func:`ftrobot_guard.cli.guardian_commands.signed_command`, as ``ftrobot guardian`` builds them), their
  verdicts in from ``guardian/result``, the guard's ``safety_state``, and the open incidents on ``incidents``,
  which the officer acknowledges through ``incidents/acknowledge``: every stop opens an incident that the guard
  re-publishes every 5 s until it is acknowledged, so over thousands of trials they would pile up;
* :func:`recover`: acknowledge the open incidents, then signed RESETs until the guard is NORMAL and the hardware
  was last asked for NORMAL (the guard re-anchors as soon as the hardware confirms NORMAL).

Shared by bench/estop_latency.py, bench/guardian_commands.py, bench/gate_latency.py and
bench/guard_kill_trials.py (imported from the same directory).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml
from cryptography.hazmat.primitives.asymmetric import ed25519
from ftrobot_msgs.msg import GuardianCommand, GuardianCommandResult, IncidentReport, SafetyState
from ftrobot_msgs.srv import AcknowledgeIncident
from rclpy.context import Context
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from std_msgs.msg import Bool

from ftrobot_guard.cli.guardian_commands import signed_command
from ftrobot_guard.guardians.guardian_commands import GuardianAction
from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.ros.qos_profiles import COMMANDS, EVENTS, GUARDIAN_COMMANDS, INCIDENTS, LATCHED
from ftrobot_guard.ros.stack_runner import log_tail
from ftrobot_guard.safety.dev_envelope import write_signed_envelope
from ftrobot_guard.trust.dev_credentials import DepartmentFiles, make_department, make_guardian, make_robot
from ftrobot_guard.trust.identity import make_identity_number
from ftrobot_guard.trust.keys import load_private_key

REPO = Path(__file__).resolve().parents[1]
ENVELOPE = REPO / "config" / "envelope" / "g1.yaml"
OPERATOR_ID = "G-440304-0001"   # operator: on duty, sends ESTOP and RESET
OFFICER_ID = "D-440304-0001"    # department officer: acknowledges the incidents
MAX_SKEW_S = 5.0                # the guard's default guardian_max_skew
START_TIMEOUT_S = 60.0
VERDICT_TIMEOUT_S = 2.0
RECOVERY_TIMEOUT_S = 60.0


# ---------------------------------------------------------------------------------------------- files and process


def ros_environment(domain: int) -> dict[str, str]:
    """The environment of a child process: this bench's domain, loopback discovery, the working copy first."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p)
    return env


def load_ed25519(path: Path) -> ed25519.Ed25519PrivateKey:
    key = load_private_key(path)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise TypeError(f"{path}: not an Ed25519 private key")
    return key


@dataclass(frozen=True)
class BenchFiles:
    params: Path
    identity_number: str
    department: DepartmentFiles
    registry: Path
    state_directory: Path
    operator_key: ed25519.Ed25519PrivateKey
    officer_key: ed25519.Ed25519PrivateKey


def make_bench_files(directory: Path, input_publishers: Sequence[str] = (),
                     input_ages: Mapping[str, float] | None = None) -> BenchFiles:
    """Department, robot credentials, an operator (on duty) and an officer registered on the robot, the committed
    envelope signed for the robot (with ``input_ages`` when given), a state directory, and the guard's params file
    (``input_publishers`` as the guard's parameter of that name)."""
    directory.mkdir(parents=True, exist_ok=True)
    department = make_department(directory / "department")
    number = make_identity_number("440304", 2026, 123)
    identity = str(number)
    robot = make_robot(directory / "robot", department, number, "Bench-Guide-01")
    registry = directory / "robot" / "guardians"
    operator = make_guardian(directory / "guardian_keys", registry, department, OPERATOR_ID, "Bench Operator",
                             "operator")
    officer = make_guardian(directory / "guardian_keys", registry, department, OFFICER_ID, "Bench Officer", "officer")
    envelope = write_signed_envelope(directory / "envelope" / "g1.yaml", ENVELOPE.read_text(encoding="utf-8"),
                                     department.key, [identity], input_ages=input_ages)
    state = directory / "state"
    values: dict[str, object] = {
        "identity_number": identity, "envelope_file": str(envelope),
        "department_ca_files": [str(department.ca_certificate)],
        "private_key_file": str(robot.private_key), "certificate_file": str(robot.certificate),
        "state_directory": str(state), "guardian_certificates_dir": str(registry),
        "guardian_on_duty": OPERATOR_ID, "guardian_max_skew": MAX_SKEW_S}
    if input_publishers:   # an empty list has no type in a ROS 2 params file: omitted
        values["input_publishers"] = list(input_publishers)
    params = directory / "guard.yaml"
    params.write_text(yaml.safe_dump({"/**/guard": {"ros__parameters": values}}), encoding="utf-8")
    return BenchFiles(params, identity, department, registry, state, load_ed25519(operator.private_key),
                           load_ed25519(officer.private_key))


def start_guard(files: BenchFiles, namespace: str, domain: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``ftrobot up guard`` exactly as on a robot, its output (stdout and stderr) in ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "ftrobot_guard.cli.main", "up", "guard", "--params",
                                 str(files.params), "--namespace", namespace], stdout=log, stderr=subprocess.STDOUT,
                                env=ros_environment(domain))


class Spinner:
    """One node on its own executor (rclpy's EventsExecutor, as the guard runs: the bench's own dispatch stays
    small next to what it measures) in a daemon thread."""

    def __init__(self, context: Context, node: Node, name: str) -> None:
        self._executor = EventsExecutor(context=context)
        self._executor.add_node(node)
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except BaseException as exc:
                if not self._stop.is_set():
                    self.error = exc
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._executor.shutdown(timeout_sec=2.0)


# ---------------------------------------------------------------------------------------------- guardian console


class Hardware(Protocol):
    """What the console needs of a bench's fake hardware: the mode it was last asked for."""

    mode: ActuationMode


class GuardianConsole:
    """The guardians' side: signed commands and unsigned e-stops out; state, verdicts and incidents in."""

    def __init__(self, context: Context, namespace: str, files: BenchFiles,
                 name: str = "bench_guardian_console") -> None:
        self.node = Node(name, context=context, namespace=namespace)
        self.files = files
        self.commands = self.node.create_publisher(GuardianCommand, "guardian/command", GUARDIAN_COMMANDS)
        self.estop = self.node.create_publisher(Bool, "estop", COMMANDS)
        self.acknowledge_client = self.node.create_client(AcknowledgeIncident, "incidents/acknowledge")
        self.state: SafetyState | None = None
        self.results: dict[bytes, tuple[int, GuardianCommandResult]] = {}   # nonce -> (arrival ns, result)
        self.open_incidents: dict[str, str] = {}                           # incident id -> what happened
        self.acknowledged = 0
        self.changed = threading.Event()
        self.node.create_subscription(SafetyState, "safety_state", self._on_state, LATCHED)
        self.node.create_subscription(GuardianCommandResult, "guardian/result", self._on_result, EVENTS)
        self.node.create_subscription(IncidentReport, "incidents", self._on_incident, INCIDENTS)

    def _on_state(self, msg: SafetyState) -> None:
        self.state = msg
        self.changed.set()

    def _on_result(self, msg: GuardianCommandResult) -> None:
        self.results[bytes(msg.nonce)] = (time.perf_counter_ns(), msg)
        self.changed.set()

    def _on_incident(self, msg: IncidentReport) -> None:
        if msg.acknowledged:
            self.open_incidents.pop(msg.incident_id, None)
        else:
            self.open_incidents[msg.incident_id] = msg.what_happened
        self.changed.set()

    def mode(self) -> str:
        return self.state.mode_name if self.state is not None else "none"

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.changed.clear()
            if predicate():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.changed.wait(min(remaining, 0.005))

    def signed(self, action: GuardianAction, reason: str, argument: str = "",
               officer: bool = False) -> GuardianCommand:
        """A freshly signed command (new nonce, issued now) by the operator (or the officer)."""
        guardian, key = (OFFICER_ID, self.files.officer_key) if officer else (OPERATOR_ID, self.files.operator_key)
        msg: GuardianCommand = signed_command(key, guardian, self.files.identity_number, action, argument, reason)
        return msg

    def result_of(self, msg: GuardianCommand, timeout: float) -> GuardianCommandResult | None:
        nonce = bytes(msg.nonce)
        if not self.wait_for(lambda: nonce in self.results, timeout):
            return None
        return self.results[nonce][1]

    def acknowledge_all(self, timeout: float = 5.0) -> list[str]:
        """Acknowledge every open incident (signed by the officer); the problems met."""
        problems = []
        for incident_id in list(self.open_incidents):
            msg = self.signed(GuardianAction.ACKNOWLEDGE, "bench: trial over", argument=incident_id, officer=True)
            future = self.acknowledge_client.call_async(AcknowledgeIncident.Request(command=msg))
            if not self.wait_for(future.done, timeout):
                problems.append(f"incident {incident_id}: no answer to the acknowledgement within {timeout:g} s")
                continue
            reply = future.result()
            if reply is None or not reply.accepted:
                problems.append(f"incident {incident_id}: acknowledgement refused: "
                                f"{reply.message if reply is not None else 'no reply'}")
            else:
                self.acknowledged += 1
            self.open_incidents.pop(incident_id, None)
        return problems


def ready(console: GuardianConsole, hardware: Hardware, timeout: float) -> bool:
    """The guard NORMAL and the hardware last asked for NORMAL (within ``timeout`` s)."""
    return console.wait_for(lambda: console.mode() == "NORMAL" and hardware.mode == ActuationMode.NORMAL, timeout)


def wait_started(console: GuardianConsole, hardware: Hardware, guard: subprocess.Popen[bytes], log_path: Path,
                 timeout: float = START_TIMEOUT_S) -> None:
    """Until the guard listens to ``guardian/command`` and ``estop``, serves ``incidents/acknowledge``, is NORMAL
    and has asked the hardware for NORMAL; RuntimeError (with the guard's log) otherwise."""
    connected = console.wait_for(
        lambda: (guard.poll() is not None or (
            console.commands.get_subscription_count() > 0 and console.estop.get_subscription_count() > 0
            and console.acknowledge_client.service_is_ready() and console.mode() == "NORMAL"
            and hardware.mode == ActuationMode.NORMAL)), timeout)
    if not connected or guard.poll() is not None:
        raise RuntimeError(f"the guard never reached NORMAL (mode {console.mode()}, process "
                           f"{'ended ' + str(guard.returncode) if guard.poll() is not None else 'running'}):"
                           f"\n{log_tail(log_path)}")


@dataclass(frozen=True)
class Recovery:
    resets: int                  # signed RESETs sent
    first_answer: str            # when the first did not bring the guard back: its verdict ("" otherwise)
    problems: tuple[str, ...]    # incident acknowledgements that failed


def recover(console: GuardianConsole, hardware: Hardware, log_path: Path,
            reason: str = "bench: e-stop trial over, cause cleared") -> Recovery:
    """Acknowledge open incidents, then signed RESETs (repeated while refused: a stopping anomaly still active)
    until the guard is NORMAL and the hardware was asked for NORMAL; RuntimeError after ``RECOVERY_TIMEOUT_S``."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    sent = 0
    first_answer = ""
    problems: list[str] = []
    while time.monotonic() < deadline:
        problems.extend(console.acknowledge_all())
        reset = console.signed(GuardianAction.RESET, reason)
        console.commands.publish(reset)
        sent += 1
        result = console.result_of(reset, VERDICT_TIMEOUT_S)
        if result is not None and result.obeyed and ready(console, hardware, VERDICT_TIMEOUT_S):
            return Recovery(sent, first_answer, tuple(problems))
        if not first_answer:
            first_answer = (f"{result.refusal or 'obeyed'}: {result.detail}" if result is not None else "no verdict")
        time.sleep(0.1)
    raise RuntimeError(f"the guard did not return to NORMAL within {RECOVERY_TIMEOUT_S:g} s of RESETs (mode "
                       f"{console.mode()}; the first answered: {first_answer}):\n{log_tail(log_path)}")


def guard_warnings(log_text: str, also_expected: Sequence[str] = ()) -> list[str]:
    """The guard's WARN and ERROR lines other than what every trial causes (the stop itself, the POWER_DOWN
    sequence, the incident it opens, the start in BOOT), de-duplicated, at most 20."""
    expected = ("safety mode ESTOP", "incident ", "POWER_DOWN", "starting in BOOT", *also_expected)
    return sorted({line.split("]: ", 1)[-1][:160] for line in log_text.splitlines()
                   if ("WARN" in line or "ERROR" in line) and not any(e in line for e in expected)})[:20]
