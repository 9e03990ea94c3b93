"""Run a stack of nodes in one process without launch_ros (`ftrobot up`), stopping cleanly on SIGINT/SIGTERM.

The nodes get the same YAML params files (``--params-file``) and namespace that
``launch/*.launch.py`` gives them on a real robot. Every params file is checked before the first
node is created, and if any node refuses its parameters, none is left running.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Mapping, Sequence

import rclpy
from rclpy.context import Context
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from ftrobot_guard.node_stacks import SINGLE_THREADED_STACKS, STACKS, NodeSpec
from ftrobot_guard.nodes.node_parameters import NodeConfigurationError
from ftrobot_guard.params_file import ParamsFileError, load_params_file


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
        self._executor: Executor | None = None
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
        rclpy.init(args=args, context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        try:
            for spec in STACKS[self._stack]:
                overrides = {"config_files": list(self._params)} if self._params else {}
                overrides.update(self._overrides)
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
        if self._stack in SINGLE_THREADED_STACKS:
            self._executor = SingleThreadedExecutor(context=self._context)
        else:
            self._executor = MultiThreadedExecutor(num_threads=4, context=self._context)
        for node in self._nodes:
            self._executor.add_node(node)

    def spin(self) -> None:
        assert self._executor is not None, "start() first"
        try:
            while not self._stop.is_set() and self._context.ok():
                self._executor.spin_once(timeout_sec=0.1)
        except ExternalShutdownException:
            pass

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=2.0)
            self._executor = None
        for node in reversed(self._nodes):
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        self._nodes.clear()
        if self._context.ok():
            rclpy.shutdown(context=self._context)


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
