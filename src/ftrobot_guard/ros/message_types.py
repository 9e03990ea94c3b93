"""ROS interface types named as strings ("sensor_msgs/msg/JointState"), as rosbag2 and `ros2 topic` name them."""

from __future__ import annotations

import array
import importlib
import math
import re
from collections.abc import Callable
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


class CdrMessageDecoder:
    """Decodes serialized messages (type name and CDR bytes) to plain dicts with rclpy's
    ``deserialize_message`` when the type is installed, else says why not; message classes are
    cached per type. The decoder ``ftrobot log export`` passes to ``blackbox.export``."""

    def __init__(self) -> None:
        self._types: dict[str, Any] = {}
        self._deserialize: Callable[[bytes, Any], Any] | None = None
        self._unavailable = ""
        try:
            from rclpy.serialization import deserialize_message  # lazy: export works, undecoded, without ROS
        except ImportError as exc:
            self._unavailable = f"rclpy not importable ({exc})"
        else:
            self._deserialize = deserialize_message

    def __call__(self, type_name: str, data: bytes) -> dict[str, Any] | str:
        """The message as a dict, or a one-line reason why it cannot be decoded."""
        if self._deserialize is None:
            return self._unavailable
        if type_name not in self._types:
            try:
                self._types[type_name] = import_message_type(type_name)
            except MessageTypeError as exc:
                self._types[type_name] = str(exc)
        cls = self._types[type_name]
        if isinstance(cls, str):
            return f"type not importable: {cls}"
        try:
            message = self._deserialize(data, cls)
        except Exception as exc:  # rclpy raises plain Exception subclasses for bad CDR
            return f"CDR bytes do not decode as {type_name}: {exc}"
        decoded = message_to_dict(message)
        return decoded if isinstance(decoded, dict) else {"data": decoded}


def message_to_dict(message: Any) -> Any:
    """Plain JSON-able form of a ROS message (recursively; arrays become lists)."""
    if hasattr(message, "get_fields_and_field_types"):
        return {name: message_to_dict(getattr(message, name)) for name in message.get_fields_and_field_types()}
    if isinstance(message, (list, tuple)):
        return [message_to_dict(v) for v in message]
    if isinstance(message, array.array):
        return message.tolist()
    if isinstance(message, (bytes, bytearray)):
        return list(message)
    if hasattr(message, "tolist"):  # numpy arrays
        return message.tolist()
    if isinstance(message, float) and not math.isfinite(message):
        return str(message)
    return message
