"""Run a stack of nodes in one process without launch_ros (`ftrobot up`), stopping cleanly on SIGINT/SIGTERM.

The nodes get the same YAML params files (``--ros-args --params-file``) and namespace that
``launch/*.launch.py`` gives them on a real robot. Every params file is checked before the first
node is created, and if any node refuses its parameters, none is left running. On stop, every
callback already running finishes before the nodes are closed and destroyed (ros/node_spinner.py).
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from ftrobot_guard.ros.node_parameters import NodeConfigurationError
from ftrobot_guard.ros.node_spinner import NodeSpinner, stop_nodes
from ftrobot_guard.ros.params_file import ParamsFileError, load_params_file
from ftrobot_guard.ros.ros_arguments import init_context
from ftrobot_guard.ros.stacks import SINGLE_THREADED_STACKS, STACKS, NodeSpec

MULTI_THREADED_CALLBACK_THREADS = 4


class StackError(Exception):
    """The stack cannot start; one line naming what is wrong."""


def _node_class(spec: NodeSpec) -> type[Node]:
    module = importlib.import_module(spec.module)
    return getattr(module, spec.class_name)  # type: ignore[no-any-return]


def _to_parameters(overrides: Mapping[str, Any]) -> list[Parameter]:
    return [Parameter(name, value=value) for name, value in overrides.items()]


class StackRunner:
    """Owns the context, the nodes and the executor of one `ftrobot up` process."""

    def __init__(
        self,
        stack: str,
        params_files: Sequence[Path],
        namespace: str = "",
        overrides: Mapping[str, Any] | None = None,
        per_node_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if stack not in STACKS:
            raise StackError(f"unknown stack {stack!r}: expected one of {', '.join(STACKS)}")
        for path in params_files:
            try:
                load_params_file(path)
            except ParamsFileError as exc:
                raise StackError(str(exc)) from None
        self._stack = stack
        self._params = [str(Path(p).resolve()) for p in params_files]
        self._namespace = namespace
        self._overrides = dict(overrides or {})
        self._per_node = {k: dict(v) for k, v in (per_node_overrides or {}).items()}
        self._context = Context()
        self._nodes: list[Node] = []
        self._spinner: NodeSpinner | None = None
        self._stop = threading.Event()

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def start(self) -> None:
        args = ["ftrobot"]
        if self._params:
            args.append("--ros-args")
            for path in self._params:
                args += ["--params-file", path]
        init_context(self._context, args)
        try:
            for spec in STACKS[self._stack]:
                overrides = dict(self._overrides)
                overrides.update(self._per_node.get(spec.node_name, {}))
                node = _node_class(spec)(
                    context=self._context, namespace=self._namespace, parameter_overrides=_to_parameters(overrides)
                )
                self._nodes.append(node)
        except NodeConfigurationError as exc:
            self.stop()
            raise StackError(str(exc)) from None
        except BaseException:
            self.stop()
            raise
        threads = 1 if self._stack in SINGLE_THREADED_STACKS else MULTI_THREADED_CALLBACK_THREADS
        self._spinner = NodeSpinner(self._context, self._nodes, threads)

    def spin(self) -> None:
        assert self._spinner is not None, "start() first"
        self._spinner.spin_until(self._stop)

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._spinner is not None:
            self._spinner.shutdown()
            self._spinner = None
        stop_nodes(self._nodes, self._context)
        self._nodes.clear()


def run_stack(
    stack: str,
    params_files: Sequence[Path],
    namespace: str = "",
    overrides: Mapping[str, Any] | None = None,
    per_node_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> int:
    """Start the stack, print one 'ready' line, spin until SIGINT/SIGTERM, stop cleanly. Exit code."""
    runner = StackRunner(stack, params_files, namespace, overrides, per_node_overrides)

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        runner.request_stop()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.start()
        names = ", ".join(node.get_fully_qualified_name() for node in runner.nodes)
        print(f"ftrobot up {stack}: ready ({names})", flush=True)
        runner.spin()
    finally:
        runner.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"ftrobot up {stack}: stopped", file=sys.stderr, flush=True)
    return 0
