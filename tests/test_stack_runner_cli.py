"""`ftrobot up` and `ftrobot dept monitor` as users run them: real processes, real DDS, clean stops, clear errors."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from ftrobot_msgs.msg import Heartbeat
from rclpy.context import Context
from rclpy.node import Node

from credentials import make_fleet, write_heartbeat_params
from ftrobot_guard.status.software_digest import files_digest
from ros_fixtures import SpinningExecutor, wait_until

# What rclpy prints when a callback outlives its node or executor at stop (issue 7, item 10).
UNCLEAN_STOP_LINES = ("never retrieved", "Destroyable", "never awaited", "Traceback")


def _ftrobot(*args: str) -> list[str]:
    return [sys.executable, "-m", "ftrobot_guard.cli.main", *args]


def test_up_and_monitor_run_and_stop_cleanly(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path)
    params = write_heartbeat_params(tmp_path / "robot.yaml", fleet)
    robot = subprocess.Popen(_ftrobot("up", "heartbeat", "--params", str(params), "--namespace", "/robot7"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert robot.stdout is not None
        assert "ftrobot up heartbeat: ready (/robot7/heartbeat)" in robot.stdout.readline()
        monitor = subprocess.run(
            _ftrobot("dept", "monitor", "--ca", str(fleet.department.ca_certificate), "--duration", "60",
                     "--interval", "0.5", "--until-verified", "1"),
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert monitor.returncode == 0, monitor.stderr
        assert fleet.robot.identity_number in monitor.stdout
        assert "verified" in monitor.stdout
        robot.send_signal(signal.SIGTERM)
        assert robot.wait(timeout=15) == 0
        _, err = robot.communicate()
        for line in UNCLEAN_STOP_LINES:
            assert line not in err, err
    finally:
        if robot.poll() is None:
            robot.kill()
            robot.wait()


def test_monitor_until_verified_fails_when_no_robot_is_heard(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path)
    monitor = subprocess.run(
        _ftrobot("dept", "monitor", "--ca", str(fleet.department.ca_certificate), "--duration", "2",
                 "--interval", "0.5", "--until-verified", "1"),
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert monitor.returncode == 1
    assert "0 of 1 robots verified within 2 s" in monitor.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_up_heartbeat_stops_cleanly_while_callbacks_run(
    tmp_path: Path, ros_context: Context, spinner: SpinningExecutor, stop_signal: signal.Signals
) -> None:
    fleet = make_fleet(tmp_path)
    params = write_heartbeat_params(
        tmp_path / "robot.yaml", fleet, rate_hz=20.0, watched="joint_states:sensor_msgs/msg/JointState"
    )
    probe = spinner.add(Node("stop_probe", context=ros_context))
    beats: list[str] = []
    lock = threading.Lock()

    def on_beat(msg: Heartbeat) -> None:
        with lock:
            beats.append(msg.config_digest)

    probe.create_subscription(Heartbeat, "/stopping/heartbeat", on_beat, 10)
    robot = subprocess.Popen(_ftrobot("up", "heartbeat", "--params", str(params), "--namespace", "/stopping"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(beats) >= 10 or robot.poll() is not None, 30.0, "ten heartbeats at 20 Hz")
        assert robot.poll() is None, robot.communicate()
        with lock:
            assert set(beats) == {files_digest([params])}  # the digest of the params file it was given
        robot.send_signal(stop_signal)
        out, err = robot.communicate(timeout=30)
    finally:
        if robot.poll() is None:
            robot.kill()
            robot.communicate()
    assert robot.returncode == 0, err
    assert "ftrobot up heartbeat: stopped" in err
    for line in UNCLEAN_STOP_LINES:
        assert line not in out + err, err


@pytest.mark.parametrize(
    "content, expected",
    [
        ("heartbeat: [unclosed\n", "not valid YAML"),
        ("/**/heartbeat:\n  params: {}\n", "expected exactly one key 'ros__parameters'"),
        ("/**/heartbeat:\n  ros__parameters:\n    rate_hz: .nan\n",
         "/**/heartbeat: rate_hz: nan is not a finite number"),
        ("/**/heartbeat:\n  ros__parameters:\n    rate_hz: 1.0\n", "identity_number is required"),
        ("/**/heartbeat:\n  ros__parameters:\n    identity_number: '440304-RB-2026-000123-9'\n    rate_hz: 1.0\n",
         "parameter robot_name is required"),
    ],
)
def test_up_refuses_bad_params_with_one_line(tmp_path: Path, content: str, expected: str) -> None:
    params = tmp_path / "bad.yaml"
    params.write_text(content, encoding="utf-8")
    result = subprocess.run(_ftrobot("up", "heartbeat", "--params", str(params)), capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ftrobot: error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "ready" not in result.stdout


def test_up_refuses_bad_namespace_and_missing_file(tmp_path: Path) -> None:
    result = subprocess.run(_ftrobot("up", "heartbeat", "--params", str(tmp_path / "none.yaml")),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "no such file" in result.stderr
    params = tmp_path / "p.yaml"
    params.write_text("/**/heartbeat:\n  ros__parameters: {}\n", encoding="utf-8")
    result = subprocess.run(_ftrobot("up", "heartbeat", "--params", str(params), "--namespace", "/9bad"),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "--namespace" in result.stderr and "Traceback" not in result.stderr
