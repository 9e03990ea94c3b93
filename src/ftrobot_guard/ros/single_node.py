"""`main()` for one node run on its own (`ros2 run ftrobot_guard heartbeat`, launch files).

The node runs on its own context, initialised with the process's arguments (ros/ros_arguments.py,
so the node knows its ``--params-file`` files), and a single-threaded spinner. SIGINT (what
``ros2 launch`` sends first) and SIGTERM stop it cleanly: the spinner stops, the node closes and is
destroyed, then the context is shut down; exit code 0. A node that refuses its parameters prints one
``error:`` line and exits with 2.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from rclpy.context import Context
from rclpy.node import Node

from ftrobot_guard.ros.node_parameters import NodeConfigurationError
from ftrobot_guard.ros.node_spinner import NodeSpinner, stop_nodes
from ftrobot_guard.ros.ros_arguments import init_context


def run_single_node(factory: Callable[..., Node], args: list[str] | None = None, events: bool = False) -> None:
    """Run one node until SIGINT/SIGTERM; ``events``: on rclpy's EventsExecutor (ros/node_spinner.py)."""
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    context = Context()
    nodes: list[Node] = []
    spinner: NodeSpinner | None = None
    try:
        init_context(context, args)
        nodes.append(factory(context=context))
        spinner = NodeSpinner(context, nodes, threads=1, events=events)
        spinner.spin_until(stop)
    except NodeConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    finally:
        if spinner is not None:
            spinner.shutdown()
        stop_nodes(nodes, context)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
