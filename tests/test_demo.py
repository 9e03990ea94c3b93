"""`make demo`: its checks can fail, and end to end every narrated step succeeds, leaving pictures and 0600 keys."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftrobot_guard.cli.demo_checklist import Checklist, StepFailed, wait_for

# Every check the demo makes with the simulator, in order (the text before any detail in parentheses).
DEMO_CHECKS = [
    "heartbeat signature verified against the department CA",
    "its watched inputs (joint_states, imu from the simulator) are fresh",
    "the guard verified the signed envelope and took the robot from BOOT to NORMAL",
    "the department sees safety mode NORMAL in the signed heartbeat",
    "black-box checkpoint witnessed by the department",
    "arms swung",
    "an elbow target beyond the soft limit is clamped",
    "a NaN command is refused with its reason",
    "the guardian's signed ESTOP from the command line, while the arms move",
    "stop category 1: the hardware holds",
    "lowered to rest, then DAMPING and motor power off",
    "the department has the robot's signed incident report",
    "a forged RESUME (signed with another key) is refused as FORGED",
    "the guard verified the signed envelope and took the robot from BOOT to NORMAL",
    "after the restart the robot still reports its open incident",
    "fault injected: a rogue node publishes on hw/joint_command",
    "the rogue publisher is found in the ROS graph",
    "the robot is stopped (SAFE_STOP) and holds its posture",
    "a RESET while the cause is still present (the rogue publisher) is refused",
    "a signed RESET after the cause is cleared",
    "no jump: the gate re-anchored",
    "the same RESET replayed off the wire is refused",
    "fault injected: the robot trips forward",
    "the fall is detected while under way",
    "fall-safe: a protective tuck through the gate, then DAMPING",
    "the tuck was the guard's own joint commands, streamed while falling",
    "the department acknowledged",
    "SILENT raised within 3 heartbeat periods",
    "log verified without any decryption key",
    "decrypted with the department's key",
    "forged certificate refused (UNKNOWN_CERTIFICATE)",
    "the impostor did not clear the real robot's SILENT alert",
    "6 pictures written as PNG",
]


def test_a_check_prints_fail_when_its_condition_is_false(capsys: pytest.CaptureFixture[str]) -> None:
    checks = Checklist()
    assert checks.check(True, "first") and checks.all_ok
    assert not checks.check(False, "second", "why")
    assert not checks.all_ok
    assert capsys.readouterr().out.splitlines() == ["  ok   first", "  FAIL second (why)"]


def test_a_wait_fails_at_its_deadline_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    checks = Checklist()
    start = time.monotonic()
    assert not checks.wait(lambda: False, 0.3, "never")
    assert time.monotonic() - start >= 0.3
    assert capsys.readouterr().out == "  FAIL never (deadline of 0.3 s exceeded)\n"
    assert checks.results == [(False, "never")]


def test_a_wait_passes_as_soon_as_its_condition_holds(capsys: pytest.CaptureFixture[str]) -> None:
    ready_at = time.monotonic() + 0.3
    checks = Checklist()
    assert checks.wait(lambda: time.monotonic() >= ready_at, 30.0, "soon")
    assert time.monotonic() - ready_at < 5.0
    assert capsys.readouterr().out == "  ok   soon\n"


def test_a_wait_stops_when_a_process_it_needs_exits() -> None:
    process = subprocess.Popen([sys.executable, "-m", "ftrobot_guard.cli.main", "up", "nothing-such"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    process.wait(timeout=60)
    start = time.monotonic()
    with pytest.raises(StepFailed) as failure:
        wait_for(lambda: False, 60.0, "its first heartbeat", (process,))
    assert time.monotonic() - start < 5.0
    assert failure.value.reason == f"ftrobot up nothing-such exited with {process.returncode} (see its log)"
    assert str(failure.value).endswith("while waiting for its first heartbeat")


@pytest.mark.clause("5.1a", "6.4b", "6.7c", "8.2")
def test_demo_runs_every_step(tmp_path: Path) -> None:
    env = {**os.environ, "FTROBOT_DEMO_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]}
    result = subprocess.run([sys.executable, "-m", "ftrobot_guard.cli.main", "demo", "--out", str(tmp_path)],
                            env=env, check=False, capture_output=True, text=True, timeout=600)
    failed = [line for line in result.stdout.splitlines() if line.startswith("  FAIL ")]
    assert result.returncode == 0, "\n".join(failed) + "\n---\n" + result.stdout[-3000:] + result.stderr[-2000:]
    assert "FAIL" not in result.stdout and "Traceback" not in result.stdout + result.stderr
    passed = [line[len("  ok   "):] for line in result.stdout.splitlines() if line.startswith("  ok   ")]
    assert len(passed) == len(DEMO_CHECKS), passed
    for line, expected in zip(passed, DEMO_CHECKS, strict=True):
        assert line.startswith(expected), (line, expected)
    assert f"{len(DEMO_CHECKS)} of {len(DEMO_CHECKS)} checks passed" in result.stdout
    (run_dir,) = tmp_path.glob("run-*")
    pictures = sorted(p.name for p in (run_dir / "pictures").glob("*.png"))
    assert len(pictures) == 6 and all((run_dir / "pictures" / p).stat().st_size > 10_000 for p in pictures)
    keys = list((run_dir / "keys").rglob("*.key"))
    assert len(keys) == 7   # department, forger, robot, impostor, log key, guardian, officer
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
