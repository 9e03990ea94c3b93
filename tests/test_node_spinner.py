"""Stopping spun nodes cleanly (ros/node_spinner.py): every callback handed out finishes before the nodes go."""

from __future__ import annotations

import gc
import threading
import time

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node

from ftrobot_guard.ros.node_spinner import NodeSpinner, stop_nodes
from ros_fixtures import session_domain_id, wait_until


class SlowTimers:
    """Timers whose callbacks take a while, counting starts and ends."""

    def __init__(self, node: Node, count: int, work_s: float) -> None:
        self.started = 0
        self.finished = 0
        self.running = 0
        self._lock = threading.Lock()
        self._work_s = work_s
        self.timers = [node.create_timer(0.005, self._tick) for _ in range(count)]

    def _tick(self) -> None:
        with self._lock:
            self.started += 1
            self.running += 1
        time.sleep(self._work_s)
        with self._lock:
            self.running -= 1
            self.finished += 1


@pytest.mark.parametrize("threads", [1, 4])
def test_stop_waits_for_running_callbacks_and_leaves_no_unretrieved_exception(
    threads: int, capfd: pytest.CaptureFixture[str]
) -> None:
    context = Context()
    rclpy.init(context=context, domain_id=session_domain_id())
    node = Node("spun", context=context)
    timers = SlowTimers(node, count=6, work_s=0.03)
    spinner = NodeSpinner(context, [node], threads)
    stop = threading.Event()
    spinning = threading.Thread(target=spinner.spin_until, args=(stop,))
    spinning.start()
    try:
        wait_until(lambda: timers.running > 0 and timers.started >= 10, 10.0, "callbacks running")
        stop.set()
        spinning.join(timeout=10.0)
        assert not spinning.is_alive()
        assert spinner.shutdown(timeout_s=5.0)
        assert timers.running == 0 and timers.started == timers.finished
    finally:
        stop.set()
        spinning.join(timeout=10.0)
        spinner.shutdown()
        stop_nodes([node], context)
    assert not context.ok()
    gc.collect()
    _out, err = capfd.readouterr()
    assert "never retrieved" not in err and "Destroyable" not in err and "never awaited" not in err


def test_a_callback_exception_reaches_the_spinning_thread() -> None:
    context = Context()
    rclpy.init(context=context, domain_id=session_domain_id())
    node = Node("failing", context=context)

    def fail() -> None:
        raise RuntimeError("callback failed")

    node.create_timer(0.01, fail)
    spinner = NodeSpinner(context, [node], threads=1)
    try:
        with pytest.raises(RuntimeError, match="callback failed"):
            spinner.spin_until(threading.Event())
    finally:
        spinner.shutdown()
        stop_nodes([node], context)


def test_needs_at_least_one_thread(ros_context: Context) -> None:
    with pytest.raises(ValueError):
        NodeSpinner(ros_context, [], threads=0)
