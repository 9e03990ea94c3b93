"""High-rate intake without one executor dispatch per message.

rclpy's executors rebuild a wait set and schedule a task for every message: about 450 µs of CPU per
heartbeat on this machine, more than verifying it (~190 µs). A department monitor that hears 1000
robots at 1 Hz would spend most of a core on dispatch alone. A :class:`BatchedIntake` keeps its
subscriptions on a node that no executor spins, and :meth:`drain` (called from a timer of the owning
node, e.g. at 50 Hz) takes every queued message in one go with the same ``take_message`` call the
executors use, identical in Jazzy (rclpy 7) and Kilted (rclpy 9).

The intake's node is named ``name`` even when the process was started with a ``__node:=`` remap
(``ros2 launch`` passes one for the owning node, and rcl applies it to every node in the process):
its own ``-r __node:=name`` takes precedence, so two nodes never share a name and rosout logging is
off for it (it logs nothing). Topic remaps given to the process still apply to its subscriptions.

The subscriptions' history depth must hold what arrives between two drains: :func:`with_depth`.
Handlers get the message (or its serialized bytes, for ``raw`` subscriptions) and rmw's message info,
whose ``received_timestamp`` (ns, UTC) is when it arrived, not when it was drained.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile

Handler = Callable[[Any, dict[str, Any]], None]


def with_depth(qos: QoSProfile, depth: int) -> QoSProfile:
    """``qos`` with keep-last history of at least ``depth`` (same reliability, durability, deadline...)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=max(depth, qos.depth), reliability=qos.reliability,
        durability=qos.durability, deadline=qos.deadline, lifespan=qos.lifespan, liveliness=qos.liveliness,
        liveliness_lease_duration=qos.liveliness_lease_duration,
    )


class BatchedIntake:
    """Subscriptions drained in batches. A handler that raises does not stop the drain: ``on_error``
    (default: re-raise) gets the topic and the exception, so one bad message is reported, not fatal."""

    def __init__(self, name: str, context: Context, namespace: str = "",
                 on_error: Callable[[str, Exception], None] | None = None) -> None:
        self._node = Node(
            name, context=context, namespace=namespace, start_parameter_services=False, enable_rosout=False,
            cli_args=["--ros-args", "-r", f"__node:={name}"],
        )
        self._subscriptions: list[tuple[Any, Handler]] = []
        self._on_error = on_error

    def subscribe(self, msg_type: Any, topic: str, qos: QoSProfile, handler: Handler, raw: bool = False) -> str:
        """Subscribe; ``handler(msg, info)`` runs for each message during :meth:`drain`. The resolved topic name."""
        subscription = self._node.create_subscription(msg_type, topic, lambda _msg: None, qos, raw=raw)
        self._subscriptions.append((subscription, handler))
        return str(subscription.topic_name)

    def drain(self, limit: int = 100_000) -> int:
        """Take and handle every queued message (at most ``limit``); how many were handled."""
        handled = 0
        for subscription, handler in self._subscriptions:
            with subscription.handle:
                while handled < limit:
                    taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
                    if taken is None:
                        break
                    handled += 1
                    try:
                        handler(taken[0], taken[1])
                    except Exception as exc:
                        if self._on_error is None:
                            raise
                        self._on_error(str(subscription.topic_name), exc)
        return handled

    @property
    def node_name(self) -> str:
        """The intake node's name in the ROS graph."""
        return str(self._node.get_name())

    def destroy(self) -> None:
        self._node.destroy_node()
