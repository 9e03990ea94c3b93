"""Spinning a process's nodes until a stop is asked for, then stopping with no callback outliving its node.

rclpy's ``Executor.shutdown`` (Jazzy and Kilted) does not wait for callbacks already handed to
worker threads, then destroys its guard condition; a callback that finishes after that fails in the
executor's own bookkeeping, and at exit Python prints ``The following exception was never retrieved:
cannot use Destroyable because destruction was requested``. A :class:`NodeSpinner` takes each ready
callback with the executor's public ``wait_for_ready_callbacks`` and runs it inline (one thread) or
on worker threads it owns, so :meth:`NodeSpinner.shutdown` waits for every callback handed out
before the executor is shut down; only then are the nodes closed and destroyed.

With ``events=True`` the nodes run on rclpy's ``EventsExecutor`` (``rclpy.experimental``, in Jazzy's
rclpy 7.1 and in Kilted): rmw calls back into a C++ event queue and each callback is dispatched from
it, without the Python wait-set rebuild that rclpy's other executors do for every callback (measured
here: a 1 kHz subscription costs 2.5x less CPU, and the cost no longer grows with the node's timers and
services; bench/gate_latency.py). Its callbacks run in the spinning thread; ``spin_once`` returns after
one callback or the poll period, so a stop is noticed as with the other executor.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

import rclpy
from rclpy.context import Context
from rclpy.executors import (
    ConditionReachedException,
    Executor,
    ExternalShutdownException,
    ShutdownException,
    TimeoutException,
)
from rclpy.node import Node
from rclpy.task import Task

POLL_S = 0.1  # how often a stop request is noticed while no callback is ready


class NodeSpinner:
    """One executor for the given nodes; ``threads`` 1 runs callbacks in the spinning thread; ``events``
    (single-threaded only) uses rclpy's EventsExecutor."""

    def __init__(self, context: Context, nodes: Sequence[Node], threads: int = 1, events: bool = False) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if events and threads != 1:
            raise ValueError("the events executor runs its callbacks in one thread: threads must be 1")
        self._context = context
        self._events = events
        if events:
            from rclpy.experimental import EventsExecutor

            self._executor = EventsExecutor(context=context)
        else:
            self._executor = Executor(context=context)
        for node in nodes:
            self._executor.add_node(node)
        self._workers = ThreadPoolExecutor(threads, thread_name_prefix="callbacks") if threads > 1 else None
        self._handed_out: list[tuple[Future[None], Task]] = []
        self._shut_down = False

    def add_node(self, node: Node) -> None:
        """Take ``node``'s callbacks too, also while spinning."""
        self._executor.add_node(node)

    def remove_node(self, node: Node) -> None:
        """Take no more callbacks of ``node``; one already handed out may still be running until
        :meth:`shutdown` returns."""
        self._executor.remove_node(node)

    def spin_until(self, stop: threading.Event) -> None:
        """Run ready callbacks until ``stop`` is set or the context is shut down; a callback's exception is raised."""
        while self._events and not stop.is_set() and self._context.ok():
            self._executor.spin_once(timeout_sec=POLL_S)
        while not stop.is_set() and self._context.ok():
            try:
                handler, _entity, _node = self._executor.wait_for_ready_callbacks(timeout_sec=POLL_S)
            except (TimeoutException, ConditionReachedException, ExternalShutdownException):
                continue
            except ShutdownException:
                return
            if self._workers is None:
                handler()
                handler.result()
            else:
                self._handed_out.append((self._workers.submit(handler), handler))
                self._raise_from_finished()

    def _raise_from_finished(self) -> None:
        finished = [task for future, task in self._handed_out if future.done()]
        self._handed_out = [(future, task) for future, task in self._handed_out if not future.done()]
        for task in finished:
            task.result()

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        """Wait up to ``timeout_s`` for every callback handed out to finish, then shut the executor down.

        True if they all finished (idempotent: later calls return True).
        """
        if self._shut_down:
            return True
        self._shut_down = True
        finished = True
        if self._workers is not None:
            _done, running = wait([future for future, _task in self._handed_out], timeout=timeout_s)
            finished = not running
            self._workers.shutdown(wait=finished)
            self._handed_out.clear()
        self._executor.shutdown(timeout_sec=timeout_s)
        return finished

def stop_nodes(nodes: Sequence[Node], context: Context) -> None:
    """Close (when a node has ``close()``) and destroy the nodes, last first, then shut the context down.

    Call it after the executor has stopped: no callback may run while a node is being destroyed.
    """
    for node in reversed(nodes):
        close = getattr(node, "close", None)
        if callable(close):
            close()
        node.destroy_node()
    if context.ok():
        rclpy.shutdown(context=context)

