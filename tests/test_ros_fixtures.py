"""The ROS test harness itself: teardown joins the executor thread even when the test's assertion failed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

INNER_TESTS = '''
from pathlib import Path

from rclpy.node import Node

from ros_fixtures import SpinningExecutor

SPINNERS: list[SpinningExecutor] = []


def test_fails_while_a_node_spins(spinner: SpinningExecutor) -> None:
    spinner.add(Node("failing_probe", context=spinner.context))
    SPINNERS.append(spinner)
    assert spinner.thread.is_alive()
    assert not spinner.thread.is_alive(), "this test fails with its executor thread running"


def test_runs_after_that_teardown() -> None:
    (spinner,) = SPINNERS
    Path("thread_after_teardown.txt").write_text("alive" if spinner.thread.is_alive() else "joined")
    Path("context_after_teardown.txt").write_text("ok" if spinner.context.ok() else "shut down")
'''


def test_teardown_joins_the_executor_thread_after_a_failed_assertion(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest('pytest_plugins = ["ros_fixtures"]\n')
    pytester.makepyfile(test_inner=INNER_TESTS)
    tests_dir = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")])))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*this test fails with its executor thread running*"])
    assert (pytester.path / "thread_after_teardown.txt").read_text() == "joined"
    assert (pytester.path / "context_after_teardown.txt").read_text() == "shut down"
