"""ROS interface types named as strings ("sensor_msgs/msg/JointState"), as rosbag2 and `ros2 topic` name them."""

from __future__ import annotations

import importlib
import re
from typing import Any

_TYPE_NAME = re.compile(r"^([a-z][a-z0-9_]*)/(msg|srv)/([A-Z][A-Za-z0-9]*)\Z")


class MessageTypeError(ValueError):
    """The name is not of the form pkg/msg/Type, or no such type is installed."""


def import_message_type(type_name: str) -> Any:
    """The Python class of ``type_name``, e.g. ``"sensor_msgs/msg/JointState"``."""
    match = _TYPE_NAME.fullmatch(type_name)
    if match is None:
        raise MessageTypeError(f"{type_name!r} is not an interface type name like 'sensor_msgs/msg/JointState'")
    package, kind, name = match.groups()
    try:
        module = importlib.import_module(f"{package}.{kind}")
    except ImportError:
        raise MessageTypeError(f"{type_name}: package {package!r} is not installed") from None
    cls = getattr(module, name, None)
    if cls is None:
        raise MessageTypeError(f"{type_name}: {package}.{kind} has no type {name!r}")
    return cls


def message_type_name(cls: Any) -> str:
    """The string name of a message class, inverse of :func:`import_message_type`."""
    package = cls.__module__.split(".")[0]
    return f"{package}/msg/{cls.__name__}"


def split_topic_and_type(entry: str) -> tuple[str, str]:
    """Split ``"joint_states:sensor_msgs/msg/JointState"`` into topic and type name, strictly."""
    topic, sep, type_name = entry.rpartition(":")
    if not sep or not topic or not type_name:
        raise MessageTypeError(f"{entry!r}: expected 'topic:package/msg/Type'")
    if _TYPE_NAME.fullmatch(type_name) is None:
        raise MessageTypeError(f"{entry!r}: the type after ':' must look like 'package/msg/Type'")
    return topic, type_name
