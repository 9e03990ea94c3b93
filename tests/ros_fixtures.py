"""Real rclpy on real DDS for tests: one context per test, an executor thread joined at teardown."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node


class SpinningExecutor:
    """Spins nodes in a background thread; :meth:`shutdown` joins it (also after a failed assertion)."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._nodes: list[Node] = []
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down under us during teardown
                if self._stop.is_set():
                    return
                raise

    def add(self, node: Node) -> Node:
        self._nodes.append(node)
        self.executor.add_node(node)
        return node

    def remove(self, node: Node) -> None:
        self.executor.remove_node(node)
        self._nodes.remove(node)
        node.destroy_node()

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)
        self.executor.shutdown(timeout_sec=2.0)
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
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def wait_for_match(publisher_or_subscription: Any, timeout_s: float = 10.0) -> None:
    """Wait until a publisher has a matched subscription (or a subscription a publisher)."""
    counter = getattr(publisher_or_subscription, "get_subscription_count", None)
    if counter is None:
        counter = publisher_or_subscription.get_publisher_count
    wait_until(lambda: counter() > 0, timeout_s, f"a match on {publisher_or_subscription.topic_name}")


@pytest.fixture
def ros_context() -> Iterator[Context]:
    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


@pytest.fixture
def spinner(ros_context: Context) -> Iterator[SpinningExecutor]:
    spinning = SpinningExecutor(ros_context)
    try:
        yield spinning
    finally:
        spinning.shutdown()
