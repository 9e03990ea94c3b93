"""`main()` for one node run on its own (`ros2 run ftrobot_guard heartbeat`, launch files)."""

from __future__ import annotations

import sys
from typing import Any, Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from ftrobot_guard.nodes.node_parameters import NodeConfigurationError


def run_single_node(factory: Callable[..., Node], args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node: Node | None = None
    try:
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except NodeConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
