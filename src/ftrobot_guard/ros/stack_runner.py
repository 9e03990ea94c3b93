"""Run a stack of nodes in one process without launch_ros (`ftrobot up`), stopping cleanly on SIGINT/SIGTERM.

The nodes get the same YAML params files (``--ros-args --params-file``) and namespace that
``launch/*.launch.py`` gives them on a real robot. Every params file is checked before the first
node is created, and if any node refuses its parameters, none is left running. On stop, every
callback already running finishes before the nodes are closed and destroyed (ros/node_spinner.py).
"""

from __future__ import annotations

import importlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
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
from ftrobot_guard.ros.stacks import (
    EVENTS_EXECUTOR_PROCESSES,
    SINGLE_THREADED_PROCESSES,
    STACKS,
    NodeSpec,
    process_nodes,
    processes,
)

MULTI_THREADED_CALLBACK_THREADS = 4


class StackError(Exception):
    """The stack cannot start; one line naming what is wrong."""


STOP_TIMEOUT_S = 10.0  # a child that has not stopped this long after SIGTERM is killed


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
        process: str | None = None,
    ) -> None:
        if stack not in STACKS:
            raise StackError(f"unknown stack {stack!r}: expected one of {', '.join(STACKS)}")
        if process is None:
            self._specs = STACKS[stack]
            self._process = stack
        elif process in processes(stack):
            self._specs = process_nodes(stack, process)
            self._process = process
        else:
            raise StackError(f"stack {stack} has no process {process!r}: expected one of {', '.join(processes(stack))}")
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
            for spec in self._specs:
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
        single = self._process in SINGLE_THREADED_PROCESSES or self._stack in SINGLE_THREADED_PROCESSES
        threads = 1 if single else MULTI_THREADED_CALLBACK_THREADS
        events = self._process in EVENTS_EXECUTOR_PROCESSES or self._stack in EVENTS_EXECUTOR_PROCESSES
        self._spinner = NodeSpinner(self._context, self._nodes, threads, events=single and events)

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
    process: str | None = None,
) -> int:
    """Start the stack (or one process of it), print one 'ready' line, spin until SIGINT/SIGTERM, stop cleanly."""
    runner = StackRunner(stack, params_files, namespace, overrides, per_node_overrides, process)

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        runner.request_stop()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.start()
        names = ", ".join(node.get_fully_qualified_name() for node in runner.nodes)
        label = stack if process is None or process == stack else f"{stack}/{process}"
        print(f"ftrobot up {label}: ready ({names})", flush=True)
        runner.spin()
    finally:
        runner.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"ftrobot up {stack if process is None else f'{stack}/{process}'}: stopped", file=sys.stderr, flush=True)
    return 0


def run_processes(stack: str, child_args: Callable[[str], list[str]], poll_s: float = 0.1) -> int:
    """Run each process of ``stack`` as a child (``child_args(process)`` is its command line) until one ends.

    SIGINT/SIGTERM end the run. When any child ends, the others are stopped (:func:`stop_processes`) and its
    exit code is returned: a robot stack is whole or not running.
    """
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[subprocess.Popen[bytes]] = []
    code = 0
    try:
        for name in processes(stack):
            children.append(subprocess.Popen(child_args(name)))
        while not stop.is_set():
            ended = [child for child in children if child.poll() is not None]
            if ended:
                code = ended[0].returncode
                print(f"ftrobot up {stack}: process {ended[0].args!r} ended with {code}; stopping the others",
                      file=sys.stderr, flush=True)
                break
            stop.wait(poll_s)
    finally:
        stop_processes(*children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` of a child process's log, indented (for a failure message)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return f"    (no log at {path})"
    return "\n".join("    " + line for line in text[-lines:])


def stop_processes(*children: subprocess.Popen[bytes] | None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop child processes: SIGTERM to every one still running (``ftrobot up`` and the nodes stop cleanly
    on it), then wait up to ``timeout_s`` for them together; SIGKILL what is left. ``None`` is skipped."""
    running = [child for child in children if child is not None and child.poll() is None]
    for child in running:
        child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for child in running:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
