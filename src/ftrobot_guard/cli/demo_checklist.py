"""The demo's checklist and process handling: every ``ok``/``FAIL`` line is a condition on something observed.

No rclpy here: the scenarios (cli/demo.py, cli/demo_guard.py) observe through their own nodes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def say(text: str) -> None:
    print(f"\n\x1b[1m== {text}\x1b[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def environment(domain_id: int) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_ftrobot(args: list[str], log: Path, env: dict[str, str], niceness: int = 0) -> subprocess.Popen[bytes]:
    """``ftrobot ARGS`` as a child process logging to ``log``; ``niceness`` > 0 starts it at a lower priority
    (what would run on another computer than the robot's driver: status reporting, a guardian's terminal)."""
    prefix = ["nice", "-n", str(niceness)] if niceness > 0 else []
    with open(log, "wb") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [*prefix, sys.executable, "-m", "ftrobot_guard.cli.main", *args], stdout=handle,
            stderr=subprocess.STDOUT, env=env,
        )




class StepFailed(Exception):
    """A step's condition was not observed: its deadline passed, or a process it needs exited."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{reason} while waiting for {what}")
        self.what = what
        self.reason = reason


def process_name(process: subprocess.Popen[bytes]) -> str:
    args = process.args
    words = [str(a) for a in args] if isinstance(args, (list, tuple)) else [str(args)]
    module = words.index("ftrobot_guard.cli.main") if "ftrobot_guard.cli.main" in words else 2
    return "ftrobot " + " ".join(words[module + 1 : module + 3])  # [nice ..., python, -m, module, up, STACK, ...]


def wait_for(
    condition: Callable[[], bool], deadline_s: float, what: str,
    processes: tuple[subprocess.Popen[bytes] | None, ...] = (),
) -> float:
    """Poll ``condition`` until it holds and return the seconds waited; raise :class:`StepFailed` when
    ``deadline_s`` passes first or one of ``processes`` exits."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        for process in processes:
            if process is not None and process.poll() is not None:
                raise StepFailed(what, f"{process_name(process)} exited with {process.returncode} (see its log)")
        if time.monotonic() - start >= deadline_s:
            raise StepFailed(what, f"deadline of {deadline_s:g} s exceeded")
        time.sleep(0.1)


class Checklist:
    """The demo's ``ok``/``FAIL`` lines.

    Every line is a predicate on something the demo observed: :meth:`wait` polls its condition until
    a deadline, :meth:`check` evaluates one now. There is no way to print ``ok`` without a condition.
    """

    def __init__(self) -> None:
        self.results: list[tuple[bool, str]] = []

    @property
    def all_ok(self) -> bool:
        return all(passed for passed, _ in self.results)

    def check(self, condition: bool, text: str, detail: str = "") -> bool:
        self.results.append((condition, text))
        print(("  ok   " if condition else "  FAIL ") + text + (f" ({detail})" if detail else ""), flush=True)
        return condition

    def wait(
        self, condition: Callable[[], bool], deadline_s: float, text: str,
        processes: tuple[subprocess.Popen[bytes] | None, ...] = (),
    ) -> bool:
        try:
            waited = wait_for(condition, deadline_s, text, processes)
        except StepFailed as exc:
            return self.check(False, text, exc.reason)
        return self.check(True, text, f"after {waited:.1f} s" if waited >= 1.0 else "")

    def failed(self, exc: StepFailed) -> None:
        """A step the rest of the scenario needs did not happen: say which, and how long it was given."""
        self.check(False, f"gave up: {exc}")


CLI_DEADLINE_S = 120.0  # an `ftrobot` command finishes
CLI_NICENESS = 5


def run_cli(args: list[str], env: dict[str, str], shown_lines: int = 14) -> tuple[int, str]:
    """Run an `ftrobot` command as a guardian or auditor would, showing its output indented: (exit code, output);
    exit code -1 when it hangs past :data:`CLI_DEADLINE_S`."""
    print(f"$ ftrobot {' '.join(args)}", flush=True)
    try:
        # At a lower priority: a guardian's or auditor's terminal is not the robot's computer, and here the
        # command's start (imports) would take a core from the simulated robot's 500 Hz streams.
        result = subprocess.run(["nice", "-n", str(CLI_NICENESS), sys.executable, "-m", "ftrobot_guard.cli.main",
                                 *args], env=env, check=False, capture_output=True, text=True,
                                timeout=CLI_DEADLINE_S)
    except subprocess.TimeoutExpired:
        print(f"    (no answer within the {CLI_DEADLINE_S:.0f} s deadline)")
        return -1, ""
    output = result.stdout + result.stderr
    for line in output.splitlines()[:shown_lines]:
        print(f"    {line}")
    return result.returncode, output
