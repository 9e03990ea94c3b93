"""The one ROS test harness: real rclpy on real DDS, one context per test, an executor thread joined at teardown.

Every ROS test takes its context, executor and waits from here (no test file keeps its own):

- ``ros_context``: a fresh :class:`rclpy.context.Context` on this session's ROS domain (``ROS_DOMAIN_ID``,
  reserved by ``conftest.py`` with a lock file), shut down after the test;
- ``spinner``: a :class:`SpinningExecutor` on that context; nodes added to it are spun in one background
  thread, and teardown stops and joins that thread and destroys the nodes, also when the test failed;
- :func:`wait_until` / :func:`wait_for_match`: poll a condition with a deadline and fail the test with
  what was awaited. A test never sleeps a fixed time and then asserts.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.subscription import Subscription

from ftrobot_guard.ros.node_spinner import NodeSpinner

NodeT = TypeVar("NodeT", bound=Node)

JOIN_TIMEOUT_S = 10.0


def session_domain_id() -> int:
    """The ROS domain reserved for this test session (see ``conftest.py``)."""
    return int(os.environ["FTROBOT_TEST_DOMAIN_ID"])


class SpinningExecutor:
    """Spins nodes in a background thread with the product's :class:`NodeSpinner`; :meth:`shutdown` (the
    ``spinner`` fixture calls it at teardown, also after a failed assertion) stops and joins that thread,
    waits for the callbacks still running, and raises if the thread did not end or a callback failed."""

    def __init__(self, context: Context, num_threads: int = 4) -> None:
        self.context = context
        self._num_threads = num_threads
        self._error: BaseException | None = None
        self._nodes: list[Node] = []
        self._start()

    def _start(self) -> None:
        self.spinning = NodeSpinner(self.context, self._nodes, threads=self._num_threads)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, name="ros-test-spinner", daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.spinning.spin_until(self._stop)
        except BaseException as exc:  # never silent: raised by shutdown() or the next remove()
            self._error = exc

    def _halt(self) -> None:
        self._stop.set()
        self.thread.join(timeout=JOIN_TIMEOUT_S)
        self.spinning.shutdown(timeout_s=JOIN_TIMEOUT_S)
        if self.thread.is_alive():
            raise RuntimeError(f"the executor thread did not end within {JOIN_TIMEOUT_S} s")
        if self._error is not None:
            raise RuntimeError(f"the executor thread failed: {self._error!r}") from self._error

    def add(self, node: NodeT) -> NodeT:
        self._nodes.append(node)
        self.spinning.add_node(node)
        return node

    def remove(self, node: Node) -> None:
        """Destroy ``node`` while no callback runs (a callback of a destroyed node fails with InvalidHandle),
        then spin the other nodes again."""
        self._halt()
        self._nodes.remove(node)
        node.destroy_node()
        self._start()

    def shutdown(self) -> None:
        try:
            self._halt()
        finally:
            for node in self._nodes:
                node.destroy_node()
            self._nodes.clear()


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` until true; fail the test with ``what`` after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)
    if condition():
        return
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def wait_for_match(endpoint: Publisher | Subscription, timeout_s: float = 10.0) -> None:
    """Wait until a publisher has a matched subscription (or a subscription a publisher)."""
    counter = endpoint.get_subscription_count if isinstance(endpoint, Publisher) else endpoint.get_publisher_count
    wait_until(lambda: counter() > 0, timeout_s, f"a match on {endpoint.topic_name}")


@pytest.fixture
def ros_context() -> Iterator[Context]:
    context = Context()
    rclpy.init(context=context, domain_id=session_domain_id())
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)
        # A future left pending by a destroyed node reports "never retrieved" when it is collected: let that
        # happen in this test's teardown, not inside a later test that checks its captured stderr.
        gc.collect()


@pytest.fixture
def spinner(ros_context: Context) -> Iterator[SpinningExecutor]:
    spinning = SpinningExecutor(ros_context)
    try:
        yield spinning
    finally:
        spinning.shutdown()
