"""A guardian's or officer's short ROS session with one robot: find it, send a signed command, hear back.

Used by ``ftrobot guardian …`` and ``ftrobot dept ack``. One :class:`GuardianLink` is one rclpy
context and one node, spun on a background thread; every wait has a deadline. A robot is found by
its namespace or by its identity number: either way its ``heartbeat`` names both (the heartbeat is
signed, but the link only uses it to find the topics: the robot itself authenticates the command).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rclpy
from ftrobot_msgs.msg import GuardianCommand, GuardianCommandResult, Heartbeat, SafetyState
from ftrobot_msgs.srv import AcknowledgeIncident
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from ftrobot_guard.ros.qos_profiles import GUARDIAN_COMMANDS, GUARDIAN_RESULTS, HEARTBEAT_MONITOR, LATCHED

POLL_S = 0.02
SETTLE_S = 0.3      # after matching, for the robot's side to match this publisher too
RESEND_S = 1.0      # the same command again while no result has come


class LinkError(Exception):
    """The robot could not be found or did not answer in time; str() says which."""


@dataclass(frozen=True)
class RobotAddress:
    namespace: str          # e.g. /futian/robot01 ("" = root)
    identity_number: str


def _topic(namespace: str, name: str) -> str:
    return f"{namespace.rstrip('/')}/{name}"


class GuardianLink:
    """One rclpy context and node for one command-line call; close() always."""

    def __init__(self, name: str = "ftrobot_guardian") -> None:
        self._context = Context()
        rclpy.init(context=self._context)
        # No rosout and no parameter services: fewer endpoints for every robot process to discover (each one a
        # burst of work there; a short-lived tool needs neither).
        self._node = Node(f"{name}_{os.getpid()}", context=self._context, enable_rosout=False,
                          start_parameter_services=False)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="guardian_link", daemon=True)
        self._thread.start()
        self._lock = threading.Lock()

    @property
    def node(self) -> Node:
        return self._node

    def _spin(self) -> None:
        while not self._stop.is_set() and self._context.ok():
            self._executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._executor.shutdown(timeout_sec=1.0)
        self._node.destroy_node()
        if self._context.ok():
            rclpy.shutdown(context=self._context)

    def __enter__(self) -> GuardianLink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ finding the robot

    def _heartbeat_topics(self) -> list[str]:
        wanted = "ftrobot_msgs/msg/Heartbeat"
        return sorted(name for name, types in self._node.get_topic_names_and_types() if wanted in types)

    def find_robot(self, timeout: float, namespace: str | None = None,
                   identity_number: str | None = None) -> RobotAddress:
        """The robot's namespace and identity number, from its heartbeat (one given, the other found)."""
        if namespace is None and identity_number is None:
            raise ValueError("give the robot's namespace or its identity number")
        if namespace is not None:
            namespace = "/" + namespace.strip("/") if namespace.strip("/") else ""
        found: dict[str, str] = {}
        subscriptions: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            topics = [_topic(namespace, "heartbeat")] if namespace is not None else self._heartbeat_topics()
            for topic in topics:
                if topic not in subscriptions:
                    subscriptions[topic] = self._node.create_subscription(
                        Heartbeat, topic, self._keeper(found, topic), HEARTBEAT_MONITOR)
            with self._lock:
                for topic, number in found.items():
                    robot_namespace = topic.rsplit("/", 1)[0]
                    if (identity_number is None or number == identity_number) and (
                            namespace is None or robot_namespace == namespace):
                        self._drop(subscriptions)
                        return RobotAddress(robot_namespace, number)
            time.sleep(0.05)
        self._drop(subscriptions)
        who = f"namespace {namespace!r}" if namespace is not None else f"identity number {identity_number}"
        raise LinkError(f"no heartbeat from the robot with {who} within {timeout:g} s")

    def _keeper(self, found: dict[str, str], topic: str) -> Callable[[Heartbeat], None]:
        def keep(msg: Heartbeat) -> None:
            with self._lock:
                found[topic] = msg.identity_number

        return keep

    def _drop(self, subscriptions: dict[str, Any]) -> None:
        for subscription in subscriptions.values():
            self._node.destroy_subscription(subscription)

    # ------------------------------------------------------------------ state, commands, acknowledgements

    def safety_state(self, namespace: str, timeout: float,
                     until: Callable[[SafetyState], bool] | None = None) -> SafetyState | None:
        """The robot's latest safety_state (the first one for which ``until`` holds), or None at the deadline."""
        latest: list[SafetyState] = []

        def keep(msg: SafetyState) -> None:
            with self._lock:
                latest.append(msg)

        subscription = self._node.create_subscription(SafetyState, _topic(namespace, "safety_state"), keep, LATCHED)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with self._lock:
                    seen, latest[:] = list(latest), []
                for msg in seen:
                    if until is None or until(msg):
                        return msg
                time.sleep(POLL_S)
            return None
        finally:
            self._node.destroy_subscription(subscription)

    def send(self, namespace: str, command: GuardianCommand, timeout: float) -> GuardianCommandResult | None:
        """Publish ``command`` on the robot's guardian/command once it is heard there; its result, or None.

        Matching is seen from this side only: the guard may not have matched this publisher yet, and the
        first sample can then be lost. So the command waits ``SETTLE_S`` after matching and is sent again,
        unchanged, every ``RESEND_S`` until a result for its nonce arrives. A repeat is harmless: the guard
        refuses it as REPLAYED (a stop is obeyed again); the earliest result (the guard's stamp) is the answer,
        and the results topic keeps the latest ones for a subscriber that matched late.
        """
        results: list[GuardianCommandResult] = []

        def keep(msg: GuardianCommandResult) -> None:
            if bytes(msg.nonce) == bytes(command.nonce):
                with self._lock:
                    results.append(msg)

        subscription = self._node.create_subscription(
            GuardianCommandResult, _topic(namespace, "guardian/result"), keep, GUARDIAN_RESULTS)
        publisher = self._node.create_publisher(GuardianCommand, _topic(namespace, "guardian/command"),
                                                GUARDIAN_COMMANDS)
        try:
            deadline = time.monotonic() + timeout
            while publisher.get_subscription_count() == 0 or subscription.get_publisher_count() == 0:
                if time.monotonic() > deadline:
                    raise LinkError(f"the robot at {namespace or '/'} does not listen on guardian/command")
                time.sleep(POLL_S)
            time.sleep(SETTLE_S)
            next_send = time.monotonic()
            while time.monotonic() < deadline:
                with self._lock:
                    answered = bool(results)
                if answered:
                    time.sleep(POLL_S)  # the result of an earlier copy may still be on its way
                    with self._lock:
                        return min(results, key=lambda r: (r.header.stamp.sec, r.header.stamp.nanosec))
                if time.monotonic() >= next_send:
                    publisher.publish(command)
                    next_send = time.monotonic() + RESEND_S
                time.sleep(POLL_S)
            return None
        finally:
            self._node.destroy_subscription(subscription)
            self._node.destroy_publisher(publisher)

    def acknowledge(self, namespace: str, command: GuardianCommand, timeout: float) -> tuple[bool, str]:
        """Call the robot's incidents/acknowledge service with a signed ACKNOWLEDGE: (accepted, message)."""
        client = self._node.create_client(AcknowledgeIncident, _topic(namespace, "incidents/acknowledge"))
        try:
            deadline = time.monotonic() + timeout
            while not client.service_is_ready():
                if time.monotonic() > deadline:
                    raise LinkError(f"the robot at {namespace or '/'} offers no incidents/acknowledge service")
                time.sleep(POLL_S)
            future = client.call_async(AcknowledgeIncident.Request(command=command))
            while not future.done():
                if time.monotonic() > deadline:
                    raise LinkError("no answer from incidents/acknowledge in time")
                time.sleep(POLL_S)
            reply = future.result()
            if reply is None:
                raise LinkError("incidents/acknowledge failed")
            return bool(reply.accepted), str(reply.message)
        finally:
            self._node.destroy_client(client)
