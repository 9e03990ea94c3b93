"""Declaring ROS parameters with descriptors and ranges, and refusing bad values before a node runs."""

from __future__ import annotations

import math
from typing import Any, Sequence

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter


class NodeConfigurationError(Exception):
    """A node cannot start with its parameters; the message names the node, the parameter and the fault."""


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
    node: Node, name: str, default: float, description: str, low: float, high: float, unit: str = ""
) -> float:
    descriptor = ParameterDescriptor(
        description=f"{description}{f' [{unit}]' if unit else ''}",
        floating_point_range=[FloatingPointRange(from_value=low, to_value=high, step=0.0)],
    )
    value = _declare(node, name, float(default), descriptor)
    return check_double(node, name, value, low, high)


def check_double(node: Node, name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: {value} is outside [{low}, {high}]")
    return value


def declare_int(node: Node, name: str, default: int, description: str, low: int, high: int) -> int:
    descriptor = ParameterDescriptor(
        description=description, integer_range=[IntegerRange(from_value=low, to_value=high, step=1)]
    )
    value = _declare(node, name, int(default), descriptor)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: {value!r} is outside [{low}, {high}]")
    return int(value)


def declare_bool(node: Node, name: str, default: bool, description: str) -> bool:
    value = _declare(node, name, bool(default), ParameterDescriptor(description=description))
    if not isinstance(value, bool):
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: expected true or false, got {value!r}")
    return value


def declare_string(node: Node, name: str, default: str, description: str, required: bool = False) -> str:
    value = _declare(node, name, default, ParameterDescriptor(description=description))
    if not isinstance(value, str):
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: expected a string, got {value!r}")
    if required and not value.strip():
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name} is required and was not set")
    return value


def declare_string_list(node: Node, name: str, default: Sequence[str], description: str) -> list[str]:
    descriptor = ParameterDescriptor(description=description)
    if default:
        value = _declare(node, name, list(default), descriptor)
    else:
        value = _declare(node, name, Parameter.Type.STRING_ARRAY, descriptor)
    if value is None:
        return []
    if not all(isinstance(item, str) for item in value):
        raise NodeConfigurationError(f"{node.get_name()}: parameter {name}: expected a list of strings, got {value!r}")
    return list(value)
