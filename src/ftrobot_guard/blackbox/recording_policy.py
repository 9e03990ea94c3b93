"""Which messages go into the black box, and in which tier (pure logic; the recorder node is thin).

Tiers:
- ``event``: every message in full (safety state, anomalies, guardian commands, gate decisions,
  heartbeats, parameter changes);
- ``incident``: like ``event``, and each new message freezes the full-rate ring: the ring's last
  ``ring_seconds`` are written to the log and state topics are then logged at full rate for
  ``post_incident_s``. A message identical to one seen before on that topic (a re-publication: the
  guard re-sends an unacknowledged incident report byte for byte) is recorded but freezes nothing;
- ``state``: robot state; kept at full rate in an in-memory ring (bounded by time and bytes) and
  written to the long-term log decimated to ``long_term_hz`` (0: only around incidents).

Topic spec strings (ROS parameter ``topics``): ``topic|package/msg/Type|tier[|long_term_hz[|qos]]``
with qos one of ``reliable`` (default), ``sensor`` (best effort), ``latched`` (transient local).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from ftrobot_guard.blackbox.record_format import Entry, Tier

TIERS = ("event", "incident", "state")
REMEMBERED_INCIDENT_MESSAGES = 1024   # digests of incident-tier messages that froze the ring
QOS_NAMES = ("reliable", "sensor", "latched")
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*/msg/[A-Z][A-Za-z0-9]*\Z")
_TOPIC = re.compile(r"^/?[A-Za-z_~{][A-Za-z0-9_/{}~]*\Z")


class TopicSpecError(ValueError):
    """A topic spec string is malformed; the message quotes it and names the field."""


@dataclass(frozen=True)
class TopicSpec:
    topic: str
    type_name: str
    tier: str
    long_term_hz: float = 0.0
    qos: str = "reliable"


def parse_topic_spec(text: str) -> TopicSpec:
    parts = [p.strip() for p in text.split("|")]
    if not 3 <= len(parts) <= 5:
        raise TopicSpecError(f"{text!r}: expected 'topic|package/msg/Type|tier[|long_term_hz[|qos]]'")
    topic, type_name, tier = parts[:3]
    if not _TOPIC.match(topic) or "//" in topic or topic.endswith("/"):
        raise TopicSpecError(f"{text!r}: topic {topic!r} is not a valid ROS topic name")
    if not _TYPE_NAME.match(type_name):
        raise TopicSpecError(f"{text!r}: type {type_name!r} is not like 'sensor_msgs/msg/JointState'")
    if tier not in TIERS:
        raise TopicSpecError(f"{text!r}: tier {tier!r} is not one of {', '.join(TIERS)}")
    hz = 0.0
    if len(parts) >= 4 and parts[3]:
        try:
            hz = float(parts[3])
        except ValueError:
            raise TopicSpecError(f"{text!r}: long_term_hz {parts[3]!r} is not a number") from None
        if not math.isfinite(hz) or not 0.0 <= hz <= 10_000.0:
            raise TopicSpecError(f"{text!r}: long_term_hz {parts[3]} is outside 0..10000")
        if hz and tier != "state":
            raise TopicSpecError(f"{text!r}: long_term_hz applies to tier 'state' only ({tier} is kept in full)")
    qos = parts[4] if len(parts) == 5 and parts[4] else "reliable"
    if qos not in QOS_NAMES:
        raise TopicSpecError(f"{text!r}: qos {qos!r} is not one of {', '.join(QOS_NAMES)}")
    return TopicSpec(topic, type_name, tier, hz, qos)


def parse_topic_specs(texts: list[str]) -> list[TopicSpec]:
    specs = [parse_topic_spec(t) for t in texts]
    seen: set[str] = set()
    for spec in specs:
        if spec.topic in seen:
            raise TopicSpecError(f"topic {spec.topic!r} is listed twice")
        seen.add(spec.topic)
    return specs


@dataclass
class _RingItem:
    time_ns: int
    spec: TopicSpec
    data: bytes
    guardian: str
    logged: bool  # already in the long-term log (not dumped again)


class IncidentRing:
    """Full-rate buffer of recent state messages, bounded by age and total bytes."""

    def __init__(self, seconds: float, max_bytes: int) -> None:
        if not (math.isfinite(seconds) and seconds > 0) or max_bytes <= 0:
            raise ValueError("ring seconds and max_bytes must be positive")
        self.window_ns = int(seconds * 1e9)
        self.max_bytes = max_bytes
        self._items: deque[_RingItem] = deque()
        self.size = 0
        self.evicted_for_space = 0

    def push(self, item: _RingItem) -> None:
        self._items.append(item)
        self.size += len(item.data)
        horizon = item.time_ns - self.window_ns
        while self._items and (self._items[0].time_ns < horizon or self.size > self.max_bytes):
            old = self._items.popleft()
            self.size -= len(old.data)
            if old.time_ns >= horizon:
                self.evicted_for_space += 1

    def drain(self) -> list[_RingItem]:
        items = list(self._items)
        self._items.clear()
        self.size = 0
        return items

    def __len__(self) -> int:
        return len(self._items)


class TwoTierRecorder:
    """Routes each message to the log (``sink``) according to its topic's tier."""

    def __init__(self, specs: list[TopicSpec], sink: Callable[[Entry], None], ring_seconds: float = 120.0,
                 ring_max_bytes: int = 64 * 1024 * 1024, post_incident_s: float = 60.0,
                 backlog_sink: Callable[[Entry], None] | None = None) -> None:
        """``backlog_sink`` (default ``sink``) takes the ring dump: entries that are history already
        (LogWriter.append_backlog seals them after the live entries)."""
        if not (math.isfinite(post_incident_s) and post_incident_s >= 0):
            raise ValueError("post_incident_s must be a finite non-negative number")
        self.specs = {s.topic: s for s in specs}
        self._sink = sink
        self._backlog_sink = backlog_sink or sink
        self.ring = IncidentRing(ring_seconds, ring_max_bytes)
        self._post_ns = int(post_incident_s * 1e9)
        self._full_rate_until = 0
        self._last_kept: dict[str, int] = {}
        self.incidents = 0
        self.guardian = ""
        self._frozen_by: OrderedDict[bytes, None] = OrderedDict()

    def on_message(self, spec: TopicSpec, data: bytes, time_ns: int) -> None:
        guardian = self.guardian
        if spec.tier != "state":
            self._sink(Entry(time_ns, spec.topic, spec.type_name, data, guardian, Tier.EVENT))
            if spec.tier == "incident" and self._first_time(spec.topic, data):
                self.freeze(time_ns)
            return
        if time_ns <= self._full_rate_until:
            self._sink(Entry(time_ns, spec.topic, spec.type_name, data, guardian, Tier.FULL_RATE))
            return
        self._full_rate_until = 0
        logged = False
        if spec.long_term_hz > 0:
            last = self._last_kept.get(spec.topic)
            if last is None or time_ns - last >= 1e9 / spec.long_term_hz:
                self._last_kept[spec.topic] = time_ns
                self._sink(Entry(time_ns, spec.topic, spec.type_name, data, guardian, Tier.LONG_TERM))
                logged = True
        self.ring.push(_RingItem(time_ns, spec, data, guardian, logged))

    def _first_time(self, topic: str, data: bytes) -> bool:
        digest = hashlib.sha256(topic.encode() + b"\0" + bytes(data)).digest()
        if digest in self._frozen_by:
            return False
        self._frozen_by[digest] = None
        if len(self._frozen_by) > REMEMBERED_INCIDENT_MESSAGES:
            self._frozen_by.popitem(last=False)
        return True

    def freeze(self, time_ns: int) -> int:
        """Persist the ring (what the long-term log does not already hold) and log state at full
        rate until ``post_incident_s`` after ``time_ns``. Returns the number of entries dumped."""
        self.incidents += 1
        dumped = 0
        for item in self.ring.drain():
            if not item.logged:
                self._backlog_sink(Entry(item.time_ns, item.spec.topic, item.spec.type_name, item.data,
                                         item.guardian, Tier.FULL_RATE))
                dumped += 1
        self._full_rate_until = max(self._full_rate_until, time_ns + self._post_ns)
        return dumped
