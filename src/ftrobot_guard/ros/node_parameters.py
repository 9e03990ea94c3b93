"""Declaring ROS parameters with descriptors and ranges, and refusing bad values before a node runs.

Every node reads its parameters once, at start. So every parameter declared here is read-only by
default (``ros2 param set`` is refused with rclpy's "read-only" reason instead of being accepted
and ignored); a node that really reacts to a change at run time declares that one with
``read_only=False``. Numbers carry their ranges in the descriptor (``ros2 param describe``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter


class NodeConfigurationError(Exception):
    """A node cannot start with its parameters; the message names the node, the parameter and the fault."""


def _descriptor(description: str, read_only: bool, **ranges: Any) -> ParameterDescriptor:
    return ParameterDescriptor(description=description, read_only=read_only, **ranges)


def _declare(node: Node, name: str, default: Any, descriptor: ParameterDescriptor) -> Any:
    """declare_parameter, with rclpy's range and type refusals turned into one clear line."""
    try:
        return node.declare_parameter(name, default, descriptor).value
    except InvalidParameterValueException as exc:
        reason = str(exc).split("Reason: ", 1)[-1]
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: {reason}") from None
    except InvalidParameterTypeException as exc:
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: wrong type ({exc})") from None


def declare_double(
    node: Node, name: str, default: float, description: str, low: float, high: float, unit: str = "",
    read_only: bool = True,
) -> float:
    descriptor = _descriptor(
        f"{description}{f' [{unit}]' if unit else ''}", read_only,
        floating_point_range=[FloatingPointRange(from_value=low, to_value=high, step=0.0)],
    )
    value = _declare(node, name, float(default), descriptor)
    return check_double(node, name, value, low, high)


def check_double(node: Node, name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: {number} is not a finite number")
    if not low <= number <= high:
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: {number} is outside [{low}, {high}]")
    return number


def declare_int(
    node: Node, name: str, default: int, description: str, low: int, high: int, read_only: bool = True
) -> int:
    descriptor = _descriptor(
        description, read_only, integer_range=[IntegerRange(from_value=low, to_value=high, step=1)]
    )
    value = _declare(node, name, int(default), descriptor)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: {value!r} is outside [{low}, {high}]")
    return int(value)


def declare_bool(node: Node, name: str, default: bool, description: str, read_only: bool = True) -> bool:
    value = _declare(node, name, bool(default), _descriptor(description, read_only))
    if not isinstance(value, bool):
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: expected true or false, got {value!r}")
    return value


def declare_string(
    node: Node, name: str, default: str, description: str, required: bool = False, read_only: bool = True
) -> str:
    value = _declare(node, name, default, _descriptor(description, read_only))
    if not isinstance(value, str):
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: expected a string, got {value!r}")
    if required and not value.strip():
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name} is required and was not set")
    return value


def declare_string_list(
    node: Node, name: str, default: Sequence[str], description: str, read_only: bool = True
) -> list[str]:
    descriptor = _descriptor(description, read_only)
    if default:
        value = _declare(node, name, list(default), descriptor)
    else:
        value = _declare(node, name, Parameter.Type.STRING_ARRAY, descriptor)
    if value is None:
        return []
    if not all(isinstance(item, str) for item in value):
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: expected a list of strings, got {value!r}")
    return list(value)


def declare_double_list(
    node: Node, name: str, default: Sequence[float], description: str, low: float, high: float, unit: str = "",
    read_only: bool = True,
) -> tuple[float, ...]:
    """A non-empty list of finite numbers in [low, high] (a params file must write ``300.0``, not ``300``)."""
    descriptor = _descriptor(
        f"{description}{f' [{unit}]' if unit else ''}", read_only,
        floating_point_range=[FloatingPointRange(from_value=low, to_value=high, step=0.0)],
    )
    try:
        value = node.declare_parameter(name, [float(v) for v in default], descriptor).value
    except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
        raise NodeConfigurationError(
            f"{node.get_name()}: parameter {name}: expected a list of floats (write 300.0, not 300): {exc}"
        ) from None
    if not isinstance(value, (list, tuple)) or not value:
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: expected a non-empty list of numbers")
    return tuple(check_double(node, name, item, low, high) for item in value)
