"""QoS chosen per topic (docs/design.md, § Topics and QoS), in one place so publishers and subscribers agree."""

from __future__ import annotations

from rclpy.duration import Duration
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    LivelinessPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

SENSOR_DATA = qos_profile_sensor_data

COMMANDS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

GUARDIAN_COMMANDS = QoSProfile(
    history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE
)

LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

# Incident reports: a late subscriber (the department monitor restarting) gets every open one.
INCIDENTS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

# What became of each guardian command: a guardian's tool that subscribed a moment before sending still gets
# the answer if the guard's writer had not matched it yet (transient local keeps the latest 100).
GUARDIAN_RESULTS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

EVENTS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


def heartbeat_publisher(period_s: float) -> QoSProfile:
    """Reliable, with an offered deadline and liveliness lease (a bonus for subscribers that ask).

    The department monitor does not rely on them: it keeps its own timestamp watchdog, since these
    QoS events do not fire on every middleware.
    """
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
        deadline=Duration(seconds=2.0 * period_s),
        liveliness=LivelinessPolicy.AUTOMATIC,
        liveliness_lease_duration=Duration(seconds=3.0 * period_s),
    )


# The monitor must hear every heartbeat publisher, including a badly configured or hostile one, so
# it asks for the least: best effort, no deadline, no liveliness lease. Such a request matches
# reliable and best-effort publishers alike; a publisher it did not match could not be judged.
# The depth holds what a fleet sends between two batched takes (1000 robots, 10 Hz intake: ~100).
HEARTBEAT_MONITOR = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
