"""`ftrobot demo` (`make demo`): the guard stack at work, narrated for a newcomer in the terminal.

1. Makes development credentials (a department CA, a robot key and certificate) in ``out/keys``.
2. Starts the simulated humanoid (`ftrobot up sim`) and the robot stack (`ftrobot up robot`) as their
   own processes, and the department monitor in this one, all on one private ROS domain that
   never leaves this machine.
3. Shows the monitor's table with the robot healthy, then pushes the simulated robot, stops the
   robot's heartbeat (the monitor raises SILENT), and starts an impostor with a forged certificate
   (the monitor refuses it and does not take it for the real robot).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from rclpy.node import Node

from rclpy.logging import LoggingSeverity

from ftrobot_guard.dev_credentials import DepartmentFiles, RobotFiles, make_department, make_robot
from ftrobot_guard.fleet_monitor import Alert, AlertKind, RobotRow
from ftrobot_guard.fleet_table import render_alert, render_table
from ftrobot_guard.identity import make_identity_number

ROBOT_NS = "/futian/robot01"
IMPOSTOR_NS = "/street/impostor"


def _say(text: str) -> None:
    print(f"\n\x1b[1m== {text}\x1b[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def _robot_params(path: Path, robot: RobotFiles, department: DepartmentFiles, with_sim: bool) -> Path:
    watched = ["joint_states:sensor_msgs/msg/JointState", "imu:sensor_msgs/msg/Imu"] if with_sim else []
    watched_line = f"    watched_topics: {_yaml_list(watched)}\n" if watched else ""
    path.write_text(
        "/**/heartbeat:\n  ros__parameters:\n"
        f'    identity_number: "{robot.identity_number}"\n'
        f'    robot_name: "{robot.robot_name}"\n'
        f'    department: "{robot.department}"\n'
        f'    private_key_file: "{robot.private_key}"\n'
        f'    certificate_file: "{robot.certificate}"\n'
        f'    department_ca_files: ["{department.ca_certificate}"]\n'
        "    rate_hz: 1.0\n"
        f"{watched_line}"
        "    watched_max_age: 0.5\n"
        '    guardian_on_duty: "G-440304-0007"\n',
        encoding="utf-8",
    )
    return path


def _recorder_params(path: Path, robot: RobotFiles, auditor_pub: Path, log_dir: Path) -> Path:
    topics = [
        "safety_state|ftrobot_msgs/msg/SafetyState|event|0|latched",
        "heartbeat|ftrobot_msgs/msg/Heartbeat|event",
        "/parameter_events|rcl_interfaces/msg/ParameterEvent|event",
        "joint_states|sensor_msgs/msg/JointState|state|2.0|sensor",
        "imu|sensor_msgs/msg/Imu|state|1.0|sensor",
    ]
    path.write_text(
        "/**/recorder:\n  ros__parameters:\n"
        f'    log_directory: "{log_dir}"\n'
        f'    identity_number: "{robot.identity_number}"\n'
        f'    signing_key_file: "{robot.private_key}"\n'
        f'    auditor_public_key_files: ["{auditor_pub}"]\n'
        f'    certificate_file: "{robot.certificate}"\n'
        '    guardian_on_duty: "G-440304-0007"\n'
        f"    topics: {_yaml_list(topics)}\n"
        "    checkpoint_every_s: 1.0\n",
        encoding="utf-8",
    )
    return path


def _environment(domain_id: int) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    handle = open(log, "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "ftrobot_guard.cli.main", *args], stdout=handle, stderr=subprocess.STDOUT, env=env
    )


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for(
    condition: Callable[[], bool], timeout_s: float, what: str, processes: tuple[subprocess.Popen[bytes] | None, ...] = ()
) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return
        for process in processes:
            if process is not None and process.poll() is not None:
                raise TimeoutError(f"demo: {' '.join(map(str, process.args[3:]))} exited with {process.returncode}"
                                   f" while waiting for {what} (see its log)")
        time.sleep(0.1)
    raise TimeoutError(f"demo: gave up waiting for {what} after {timeout_s:.0f} s")


def _cli(args: list[str], env: dict[str, str]) -> int:
    """Run an `ftrobot` command as an auditor would, showing its output indented."""
    print(f"$ ftrobot {' '.join(args)}")
    result = subprocess.run([sys.executable, "-m", "ftrobot_guard.cli.main", *args], env=env, capture_output=True,
                            text=True, timeout=120)
    for line in (result.stdout + result.stderr).splitlines()[:14]:
        print(f"    {line}")
    return result.returncode


def _hardware_contract_step(monitor: "Node", expect: Callable[[bool, str], None]) -> bool:
    """Watch the simulator's ground truth, then ask it for DAMPING through hw/set_actuation_mode."""
    from ftrobot_msgs.msg import SimGroundTruth
    from ftrobot_msgs.srv import SetActuationMode

    truth: list[SimGroundTruth] = []
    sub = monitor.create_subscription(SimGroundTruth, f"{ROBOT_NS}/sim/ground_truth", truth.append, 10)
    client = monitor.create_client(SetActuationMode, f"{ROBOT_NS}/hw/set_actuation_mode")
    try:
        _wait_for(lambda: bool(truth) and client.service_is_ready(), 30, "the simulator's ground truth and service")
        standing = truth[-1]
        print(f"  pelvis {standing.pelvis_height:.2f} m, tilt {standing.tilt:.2f} rad, mode {standing.actuation_mode_name},"
              f" real-time factor {standing.real_time_factor:.2f}")
        expect(not standing.fallen, "the simulated G1 stands (HOLD)")
        print("  (a later issue's safety supervisor makes this call; here the demo calls the hardware contract)")
        future = client.call_async(SetActuationMode.Request(mode=SetActuationMode.Request.MODE_DAMPING,
                                                            reason="demo: category-1 style soft stop"))
        _wait_for(future.done, 10, "the actuation mode reply")
        reply = future.result()
        expect(reply is not None and reply.success, f"hw/set_actuation_mode DAMPING accepted: {reply.message if reply else ''}")
        time.sleep(4.0)
        after = truth[-1]
        print(f"  after 4 s of DAMPING: pelvis {after.pelvis_height:.2f} m, fallen {after.fallen}, peak impact speed "
              f"{after.peak_impact_speed:.2f} m/s (the lowering step of POWER_DOWN exists to avoid this)")
        expect(after.actuation_mode_name == "DAMPING", "the robot is in DAMPING")
        return True
    except TimeoutError as exc:
        print(f"  FAIL {exc}")
        return False
    finally:
        monitor.destroy_subscription(sub)
        monitor.destroy_client(client)


def _pictures(directory: Path) -> list[Path]:
    """A fast, headless MuJoCo run (no ROS) of the stop modes, drawn as PNGs for the README's readers."""
    from ftrobot_guard.sim.actuation_modes import ActuationMode
    from ftrobot_guard.sim.humanoid_sim import HumanoidSim, SimConfig
    from ftrobot_guard.sim.plots import plot_scenario
    from ftrobot_guard.sim.snapshots import write_png

    written = []
    for mode in (ActuationMode.DAMPING, ActuationMode.POWER_OFF):
        name = mode.name.lower()
        sim = HumanoidSim(SimConfig(require_guard_alive=False, seed=1))
        sim.run_for(1.0)
        written.append(write_png(sim, directory / f"g1-{name}-before.png"))
        outcome = sim.set_actuation_mode(int(mode), reason="demo picture")
        if not outcome.success:
            raise RuntimeError(f"simulator refused {mode.name}: {outcome.message}")
        sim.run_for(3.0)
        truth = sim.ground_truth()
        print(f"  {mode.name}: pelvis {truth.pelvis_height:.2f} m after 3 s, fallen {truth.fallen}, "
              f"peak impact speed {truth.peak_impact_speed:.2f} m/s")
        written.append(write_png(sim, directory / f"g1-{name}-after.png"))
        written.append(plot_scenario(sim.recorder, sim.faults, directory / f"g1-{name}-plot.png",
                                     title=f"Unitree G1 from standing: {mode.name}"))
    return written


def run_demo(out: Path, with_sim: bool = True) -> int:
    """Run the scenario; returns 0 when every step showed what it should, 1 otherwise."""
    domain_id = int(os.environ.get("FTROBOT_DEMO_DOMAIN_ID", str(100 + os.getpid() % 100)))
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    out = out.resolve()
    run_dir = out / time.strftime("run-%Y%m%d-%H%M%S")
    keys = run_dir / "keys"
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    _say("1. Development credentials (generated now, never committed)")
    department = make_department(keys / "department")
    identity = make_identity_number("440304", 2026, 123)
    robot = make_robot(keys / "robot01", department, identity, "Futian-Guide-01")
    forger = make_department(keys / "forger", name="Not The Department")
    impostor = make_robot(keys / "impostor", forger, identity, "Futian-Guide-01")
    print(f"department CA  {department.ca_certificate}")
    print(f"robot          {robot.identity_number} '{robot.robot_name}' key {robot.private_key} (mode 0600)")
    print(f"impostor       same identity number, certificate from a forged CA ({forger.ca_certificate})")
    from ftrobot_guard.keys import generate_private_key, write_private_key, write_public_key

    auditor_key = generate_private_key("x25519")
    auditor_key_file = write_private_key(keys / "department" / "log_x25519.key", auditor_key)
    auditor_pub = write_public_key(keys / "department" / "log_x25519.pub.pem", auditor_key.public_key())
    print(f"log key        the department's X25519 key {auditor_pub}: only it can read the black box")
    log_dir = run_dir / "blackbox"
    robot_params = _robot_params(run_dir / "robot.yaml", robot, department, with_sim)
    recorder_params = _recorder_params(run_dir / "recorder.yaml", robot, auditor_pub, log_dir)
    impostor_params = _robot_params(run_dir / "impostor.yaml", impostor, forger, False)

    # The monitor runs in this process, so the table below is the department's own view.
    from ftrobot_guard.nodes.department_monitor_node import DepartmentMonitorNode
    from ftrobot_guard.package_share import package_share
    from ftrobot_guard.process_runner import StackRunner

    env = _environment(domain_id)
    dept_params = package_share() / "config" / "department.yaml"
    runner = StackRunner(
        "department", [dept_params],
        per_node_overrides={"department_monitor": {
            "trusted_ca_files": [str(department.ca_certificate)],
            "witnessed_heads_file": str(run_dir / "witnessed_heads.jsonl"),
        }},
    )
    runner.start()
    monitor = runner.nodes[0]
    # The demo prints the monitor's alerts and table itself; its ROS log would say everything twice.
    monitor.get_logger().set_level(LoggingSeverity.ERROR)
    assert isinstance(monitor, DepartmentMonitorNode)
    alerts: list[Alert] = []
    monitor.add_alert_listener(alerts.append)
    spinner = threading.Thread(target=runner.spin, daemon=True)
    spinner.start()

    sim = robot_proc = impostor_proc = None
    ok = True

    def rows() -> list[RobotRow]:
        return monitor.rows()

    def row_of(number: str) -> RobotRow | None:
        return next((r for r in rows() if r.identity_number == number), None)

    def show(title: str) -> None:
        print(f"-- department monitor: {title}")
        print(render_table(rows()))

    def expect(condition: bool, text: str) -> None:
        nonlocal ok
        print(("  ok   " if condition else "  FAIL ") + text)
        ok = ok and condition

    try:
        _say(f"2. Starting the robot on ROS domain {domain_id} (discovery limited to this machine)")
        if with_sim:
            sim = _start(["up", "sim", "--namespace", ROBOT_NS, "--headless"], logs / "sim.log", env)
            print(f"simulated Unitree G1 (MuJoCo) in {ROBOT_NS}: log {logs / 'sim.log'}")
        robot_proc = _start(["up", "robot", "--params", str(robot_params), "--params", str(recorder_params),
                             "--namespace", ROBOT_NS], logs / "robot.log", env)
        print(f"robot guard stack (heartbeat, black-box recorder) in {ROBOT_NS}: log {logs / 'robot.log'}")
        _wait_for(lambda: (r := row_of(robot.identity_number)) is not None and r.last_seen_age_s is not None,
                  60, "the robot's first heartbeat", (sim, robot_proc))
        time.sleep(3.0)
        show("the robot is heard, its signature verified")
        row = row_of(robot.identity_number)
        expect(row is not None and row.signature_state.value == "verified", "heartbeat signature verified against the department CA")
        if with_sim:
            expect(row is not None and AlertKind.UNHEALTHY not in row.active_alerts,
                   "its watched inputs (joint_states, imu from the simulator) are fresh")
        print("  note: no safety supervisor runs yet, so the robot reports safety mode BOOT (SAFETY_MODE alert)")
        wait_head = lambda: monitor.witnessed_heads.heads(robot.identity_number) != []  # noqa: E731
        _wait_for(wait_head, 20, "a black-box checkpoint witnessed through the heartbeat", (sim, robot_proc))
        head = monitor.witnessed_heads.heads(robot.identity_number)[-1]
        expect(True, f"black-box checkpoint witnessed by the department: record {head.sequence}, "
                     f"chain head {head.chain_head[:16]}...")
        if with_sim:
            _say("2b. The hardware contract: the simulated robot stands in HOLD, then is put in DAMPING")
            ok = _hardware_contract_step(monitor, expect) and ok

        _say("3. The robot's heartbeat stops (its process is stopped)")
        alerts.clear()
        _stop(robot_proc)
        robot_proc = None
        _wait_for(lambda: any(a.kind == AlertKind.SILENT and a.raised for a in alerts), 15, "the SILENT alert")
        for alert in alerts:
            print(render_alert(alert))
        show("the department sees the robot silent")
        expect(any(a.kind == AlertKind.SILENT and a.raised for a in alerts), "SILENT raised within 3 heartbeat periods")

        _say("3b. An auditor verifies the robot's black box against what the department witnessed")
        heads_file = run_dir / "heads.json"
        _cli(["dept", "heads", "--store", str(run_dir / "witnessed_heads.jsonl"), "--identity", robot.identity_number,
              "--out", str(heads_file)], env)
        verify = _cli(["log", "verify", str(log_dir), "--heads", str(heads_file), "--ca",
                       str(department.ca_certificate)], env)
        expect(verify == 0, "log verified without any decryption key: integrity, order, completeness, witnessed heads")
        exported = run_dir / "export.jsonl"
        _cli(["log", "export", str(log_dir), "--key", str(auditor_key_file), "--topic", "heartbeat",
              "--out", str(exported)], env)
        lines = exported.read_text(encoding="utf-8").splitlines() if exported.exists() else []
        expect(bool(lines), f"decrypted with the department's key: {len(lines)} records exported to {exported}")

        _say("4. An impostor claims the robot's identity number with a forged certificate")
        alerts.clear()
        impostor_proc = _start(["up", "heartbeat", "--params", str(impostor_params), "--namespace", IMPOSTOR_NS],
                               logs / "impostor.log", env)
        _wait_for(lambda: any(a.kind == AlertKind.UNKNOWN_CERTIFICATE for a in alerts), 30, "the impostor to be refused")
        time.sleep(2.0)
        for alert in alerts:
            print(render_alert(alert))
        show("the impostor is refused; the real robot is still silent")
        row = row_of(robot.identity_number)
        expect(any(a.kind == AlertKind.UNKNOWN_CERTIFICATE and a.raised for a in alerts),
               "forged certificate refused (UNKNOWN_CERTIFICATE)")
        expect(row is not None and AlertKind.SILENT in row.active_alerts,
               "the impostor did not clear the real robot's SILENT alert")
    except TimeoutError as exc:
        print(f"  FAIL {exc}")
        ok = False
    finally:
        for process in (impostor_proc, robot_proc, sim):
            _stop(process)
        runner.request_stop()
        spinner.join(timeout=5.0)
        runner.stop()

    if with_sim:
        _say("5. Pictures: the G1 from standing in DAMPING and in POWER_OFF (MuJoCo, offscreen)")
        try:
            for picture in _pictures(run_dir / "pictures"):
                print(f"  {picture}")
        except Exception as exc:  # a picture is a nicety: report it, never hide it
            print(f"  FAIL pictures not written: {exc}")
            ok = False

    _say("Done" if ok else "Done, with failures")
    print(f"keys, params and logs: {run_dir}")
    return 0 if ok else 1
