"""The ROS arguments a process was started with, and the params files among them.

rcl reads ``--params-file`` from the command line but rclpy does not say which files a node was
given. The heartbeat reports a digest of exactly those files, so this module keeps the arguments
each context was initialised with (:func:`init_context`) and reads the params files from them the
way rcl does (:func:`params_files`): ``ros2 run``, ``ros2 launch`` (launch_ros passes
``--ros-args -r __node:=NAME -r __ns:=NS --params-file FILE ...``) and ``ftrobot up`` all start
nodes through it, so a launch file never has to repeat its params files as a parameter.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.signals import SignalHandlerOptions

ROS_ARGS = "--ros-args"
END_OF_ROS_ARGS = "--"
PARAMS_FILE = "--params-file"
# rcl's flags that take a value (rcl/arguments.h); the other ROS flags (--enable-/--disable-*-logs) take none.
_FLAGS_WITH_VALUE = frozenset({
    "-r", "--remap", "-p", "--param", PARAMS_FILE, "-e", "--enclave", "--log-level", "--log-config-file",
    "--log-file-name",
})

_CONTEXT_ARGUMENTS: weakref.WeakKeyDictionary[Context, tuple[str, ...]] = weakref.WeakKeyDictionary()


class RosArgumentsError(ValueError):
    """A ROS flag at the end of the command line has no value."""


def params_files(argv: Sequence[str]) -> list[str]:
    """The values of ``--params-file`` inside ``--ros-args`` sections, in command-line order.

    A section runs from ``--ros-args`` to ``--`` or the end; ``--params-file`` outside one is a
    user argument and is not a params file (rcl's rule). Flags taking a value consume the next token.
    """
    found: list[str] = []
    in_section = False
    index = 0
    while index < len(argv):
        token = argv[index]
        if not in_section:
            in_section = token == ROS_ARGS
        elif token == END_OF_ROS_ARGS:
            in_section = False
        elif token == ROS_ARGS:
            pass
        elif token in _FLAGS_WITH_VALUE:
            if index + 1 >= len(argv):
                raise RosArgumentsError(f"ROS argument {token} has no value")
            if token == PARAMS_FILE:
                found.append(argv[index + 1])
            index += 1
        index += 1
    return found


def init_context(
    context: Context, args: Sequence[str] | None, signal_handler_options: SignalHandlerOptions = SignalHandlerOptions.NO
) -> None:
    """``rclpy.init`` on ``context`` (``args`` None: ``sys.argv``, as rclpy does), remembering the arguments."""
    arguments = tuple(sys.argv if args is None else args)
    rclpy.init(args=list(arguments), context=context, signal_handler_options=signal_handler_options)
    _CONTEXT_ARGUMENTS[context] = arguments


def context_arguments(context: Context) -> tuple[str, ...]:
    """The arguments ``context`` was initialised with by :func:`init_context`; () for any other context."""
    return _CONTEXT_ARGUMENTS.get(context, ())


def node_params_files(context: Context, node_kwargs: Mapping[str, Any]) -> list[str]:
    """The params files rcl gives a node created with ``node_kwargs``: the process's, then its own ``cli_args``."""
    files = params_files(context_arguments(context)) if node_kwargs.get("use_global_arguments", True) else []
    return files + params_files(node_kwargs.get("cli_args") or ())
