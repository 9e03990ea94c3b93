"""The heartbeat report: what the robot tells the department about itself, as plain values.

A :class:`HeartbeatReporter` holds what a report is made of — the robot's identity, the boot
session, the safety mode last heard, the liveness of watched inputs, the software and configuration
digests, the guardian on duty, the number of incident reports not yet acknowledged by the department
and the black box's latest signed checkpoint — and makes the next
:class:`HeartbeatReport` (sequence numbers strictly increasing within one boot). The heartbeat node
only copies a report into ``ftrobot_msgs/Heartbeat``, adds the certificate and signs it. No rclpy.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

from ftrobot_guard.safety.modes import SafetyMode, mode_from_number
from ftrobot_guard.status.topic_liveness import TopicHealthView, TopicWatch


@dataclass(frozen=True)
class RobotIdentity:
    identity_number: str
    robot_name: str
    department: str


@dataclass(frozen=True)
class LogCheckpointView:
    """The black box's latest signed checkpoint, as the heartbeat carries it."""

    sequence: int
    segment_id: str
    chain_head: str
    stamp_ns: int  # the checkpoint's own time
    signature: bytes


@dataclass(frozen=True)
class WatchedTopicReport:
    topic: str  # resolved name
    ever_received: bool
    age_s: float
    max_age_s: float
    healthy: bool


@dataclass(frozen=True)
class HeartbeatReport:
    identity_number: str
    robot_name: str
    department: str
    boot_id: str
    sequence: int
    uptime_s: float
    safety_mode: int
    safety_mode_name: str
    watched_topics: tuple[WatchedTopicReport, ...]
    software_digest: str
    config_digest: str
    guardian_on_duty: str
    checkpoint: LogCheckpointView | None
    open_incidents: int = 0  # incident reports not yet acknowledged by the department

    @property
    def stale_topics(self) -> list[str]:
        return [health.topic for health in self.watched_topics if not health.healthy]


class HeartbeatReporter:
    """State of one boot session's heartbeat; times are seconds on one monotonic clock given by the caller."""

    def __init__(
        self,
        identity: RobotIdentity,
        watch: TopicWatch,
        resolved_topics: dict[str, str],
        software_digest: str,
        config_digest: str,
        guardian_on_duty: str,
        start_s: float,
        boot_id: str | None = None,
    ) -> None:
        missing = [topic for topic in watch.topics if topic not in resolved_topics]
        if missing:
            raise ValueError(f"no resolved name for watched topics {missing}")
        self._identity = identity
        self._watch = watch
        self._resolved = dict(resolved_topics)
        self._software_digest = software_digest
        self._config_digest = config_digest
        self._guardian = guardian_on_duty
        self._start_s = start_s
        self._boot_id = boot_id if boot_id is not None else uuid.uuid4().hex
        self._sequence = 0
        self._mode = SafetyMode.BOOT
        self._checkpoint: LogCheckpointView | None = None
        self._open_incidents = 0

    @property
    def boot_id(self) -> str:
        return self._boot_id

    @property
    def mode(self) -> SafetyMode:
        return self._mode

    def on_safety_mode(self, number: int) -> bool:
        """Take the safety mode reported on ``safety_state``; True when it changed (a report is due at once).

        Raises ``UnknownSafetyModeError`` for a number that is no mode; the mode is then unchanged.
        """
        mode = mode_from_number(number)
        changed = mode != self._mode
        self._mode = mode
        return changed

    def on_open_incidents(self, count: int) -> bool:
        """Take the number of incidents not yet acknowledged (uint32); True when it changed."""
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 0xFFFFFFFF:
            raise ValueError(f"open incident count must be an integer 0..2**32-1, got {count!r}")
        changed = count != self._open_incidents
        self._open_incidents = count
        return changed

    @property
    def open_incidents(self) -> int:
        return self._open_incidents

    def on_guardian_on_duty(self, guardian_id: str) -> bool:
        """Take the guardian on duty named on ``safety_state`` (the guard's signed handovers); True when it
        changed. An empty name keeps the one known (the configured guardian until the guard names one)."""
        if not isinstance(guardian_id, str):
            raise ValueError(f"guardian on duty must be a string, got {guardian_id!r}")
        if not guardian_id or guardian_id == self._guardian:
            return False
        self._guardian = guardian_id
        return True

    @property
    def guardian_on_duty(self) -> str:
        return self._guardian

    def on_checkpoint(self, checkpoint: LogCheckpointView) -> None:
        self._checkpoint = checkpoint

    def mark_received(self, topic: str, received_s: float) -> None:
        """A watched topic delivered a message at ``received_s`` (the latest time counts)."""
        self._watch.mark(topic, received_s)

    def next_report(self, now_s: float) -> HeartbeatReport:
        """The next report (sequence + 1) as of ``now_s``."""
        if not math.isfinite(now_s):
            raise ValueError(f"now_s must be finite, got {now_s}")
        self._sequence += 1
        return HeartbeatReport(
            identity_number=self._identity.identity_number,
            robot_name=self._identity.robot_name,
            department=self._identity.department,
            boot_id=self._boot_id,
            sequence=self._sequence,
            uptime_s=max(0.0, now_s - self._start_s),
            safety_mode=int(self._mode),
            safety_mode_name=self._mode.name,
            watched_topics=tuple(self._topic_report(view) for view in self._watch.health(now_s)),
            software_digest=self._software_digest,
            config_digest=self._config_digest,
            guardian_on_duty=self._guardian,
            checkpoint=self._checkpoint,
            open_incidents=self._open_incidents,
        )

    def _topic_report(self, view: TopicHealthView) -> WatchedTopicReport:
        return WatchedTopicReport(
            topic=self._resolved[view.topic], ever_received=view.ever_received, age_s=view.age_s,
            max_age_s=view.max_age_s, healthy=view.healthy,
        )
