"""Intrusion check: who publishes on the robot's hardware and command-gate topics, against who may.

Only the guard may publish on the ``hw/*`` topics the guard node passes here (the hardware contract's inputs,
``hw/joint_command`` and ``hw/cmd_vel``: a second publisher there bypasses the envelope, the gate and the
supervisor; ``hw/actuation_state`` is the driver's output and is not passed). Only allowlisted nodes may
publish on ``guard/in/*`` (the gate's inputs: joint commands, base velocity, task requests). The guard node
asks the ROS graph (``Node.get_publishers_info_by_topic``) periodically and on graph events and passes each topic's
publishers here; this module is pure and keeps which (kind, subject) is active, so a report is sent once
when an intruder appears and once when it is gone (same edge rules as
:mod:`~ftrobot_guard.safety.anomaly_detectors`).

Topic names. The caller passes resolved names (``/futian/robot01/hw/joint_command``) and gives the robot's
namespace once, to :class:`IntrusionCheck`. A topic is judged by its name relative to that namespace
(``hw/joint_command``): ``hw/...`` against the guard nodes, ``guard/in/...`` against the allowlist. Topics
outside the namespace, and other topics inside it, are not judged (an empty list is returned). With the
namespace ``/`` (or ``""``) every topic is relative to the root.

Node names are fully qualified (``/futian/robot01/ftrobot_guard``). Guard nodes are exact names. Allowlist
entries are exact names or :mod:`fnmatch` patterns (case-sensitive; ``*`` also matches ``/``, so
``/futian/robot01/*`` admits nodes in sub-namespaces too). A publisher that the graph cannot name (a plain
DDS participant: rmw reports ``_NODE_NAME_UNKNOWN_``) matches no entry and is reported.

Kinds (both ERROR, no debounce: the graph is authoritative; detection delay = the caller's polling period,
or the graph event's delivery):

* ``rogue_hw_publisher``: a publisher on ``hw/*`` that is not a guard node. Subject ``<node> -> <topic>``.
* ``unauthorised_publisher``: a publisher on ``guard/in/*`` that is not on that topic's allowlist.

The allowlist comes from a ROS string-array parameter, one ``topic=node`` per entry
(:func:`parse_allowlist`), e.g. ``["guard/in/joint_command=/futian/robot01/arm_controller"]``.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ftrobot_guard.safety.anomaly_detectors import AnomalyReport
from ftrobot_guard.safety.response_policy import Severity

HW_PREFIX = "hw/"
GUARD_IN_PREFIX = "guard/in/"
DETECTOR = "intrusion"
MAX_ENTRIES = 256
MAX_PUBLISHERS = 1000        # per topic and call; beyond, the rest is summarised in one report
_TOKEN = r"[A-Za-z_][A-Za-z0-9_]*"
_RELATIVE_TOPIC = re.compile(rf"{_TOKEN}(/{_TOKEN})*\Z")
_NAMESPACE = re.compile(rf"(/{_TOKEN})*/?\Z")
_NODE_FQN = re.compile(rf"(/{_TOKEN})+\Z")
_NODE_PATTERN = re.compile(r"/[A-Za-z0-9_/*?\[\]!]+\Z")


class AllowlistError(ValueError):
    """A refused allowlist or guard-node list; str() is one line naming the entry."""


@dataclass(frozen=True)
class Publisher:
    """One publisher of a topic as the ROS graph reports it (``TopicEndpointInfo``)."""

    node_name: str
    node_namespace: str

    @property
    def fqn(self) -> str:
        """The node's fully qualified name: ``/ns/name`` (``/name`` in the root namespace)."""
        namespace = self.node_namespace.rstrip("/")
        return f"{namespace}/{self.node_name}"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_topic(topic: object, where: str) -> str:
    if not isinstance(topic, str) or not _RELATIVE_TOPIC.match(topic):
        raise AllowlistError(f"{where}: topic {_show(topic)} is not a relative ROS topic name like "
                             "guard/in/joint_command")
    if not topic.startswith(GUARD_IN_PREFIX) or topic == GUARD_IN_PREFIX.rstrip("/"):
        hint = " (hw/* is reserved to the guard)" if topic.startswith(HW_PREFIX) else ""
        raise AllowlistError(f"{where}: topic {topic!r} is not under {GUARD_IN_PREFIX}: only the command gate's "
                             f"inputs have an allowlist{hint}")
    return topic


def _check_node(node: object, where: str, patterns: bool) -> str:
    valid = isinstance(node, str) and (_NODE_PATTERN.match(node) if patterns else _NODE_FQN.match(node))
    if not valid or "//" in str(node) or str(node).endswith("/"):
        kind = "a fully qualified node name or pattern" if patterns else "a fully qualified node name"
        raise AllowlistError(f"{where}: {_show(node)} is not {kind} like /futian/robot01/arm_controller")
    return str(node)


def parse_allowlist(entries: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["guard/in/joint_command=/ns/arm_controller", ...]`` → ``{topic: (node or pattern, ...)}``.

    Strict: every entry is ``topic=node`` with a relative ``guard/in/...`` topic and a fully qualified node
    name or fnmatch pattern, no spaces, no repeats; otherwise :class:`AllowlistError` names the entry.
    """
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise AllowlistError(f"allowlist: expected a list of 'topic=node' strings, got {type(entries).__name__}")
    if len(entries) > MAX_ENTRIES:
        raise AllowlistError(f"allowlist: {len(entries)} entries, at most {MAX_ENTRIES}")
    result: dict[str, list[str]] = {}
    for i, entry in enumerate(entries):
        where = f"allowlist[{i}]"
        if not isinstance(entry, str):
            raise AllowlistError(f"{where}: {_show(entry)} is not a string 'topic=node'")
        if entry.count("=") != 1:
            raise AllowlistError(f"{where}: {_show(entry)} is not 'topic=node' (exactly one '=')")
        topic, node = entry.split("=")
        topic = _check_topic(topic, where)
        node = _check_node(node, where, patterns=True)
        if node in result.get(topic, ()):
            raise AllowlistError(f"{where}: {entry!r} is listed twice")
        result.setdefault(topic, []).append(node)
    return {topic: tuple(nodes) for topic, nodes in result.items()}


class IntrusionCheck:
    """Who may publish where; :meth:`publishers` turns one topic's graph view into raise/clear reports."""

    parse_allowlist = staticmethod(parse_allowlist)

    def __init__(self, guard_nodes: Iterable[str], allowlist: Mapping[str, Iterable[str]],
                 namespace: str = "/") -> None:
        if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
            raise AllowlistError(f"namespace {_show(namespace)} is not an absolute ROS namespace like /futian/robot01")
        self.namespace = namespace.rstrip("/")
        self.guard_nodes = frozenset(_check_node(node, "guard node", patterns=False) for node in guard_nodes)
        if not self.guard_nodes:
            raise AllowlistError("guard nodes: at least one (the guard's own fully qualified name)")
        self.allowlist: dict[str, tuple[str, ...]] = {
            _check_topic(topic, "allowlist"): tuple(_check_node(node, f"allowlist {topic}", patterns=True)
                                                     for node in nodes)
            for topic, nodes in allowlist.items()}
        self._active: dict[tuple[str, str], AnomalyReport] = {}
        self._by_topic: dict[str, set[tuple[str, str]]] = {}

    def relative(self, topic: str) -> str | None:
        """The topic's name relative to the robot's namespace, or None when it is outside it."""
        if not isinstance(topic, str) or not topic.startswith("/"):
            return None
        prefix = self.namespace + "/"
        return topic[len(prefix):] if topic.startswith(prefix) else None

    def _allowed(self, relative: str, fqn: str) -> bool:
        if relative.startswith(HW_PREFIX):
            return fqn in self.guard_nodes
        return any(fnmatch.fnmatchcase(fqn, pattern) for pattern in self.allowlist.get(relative, ()))

    def publishers(self, now: float, topic: str, publishers: Sequence[Publisher]) -> list[AnomalyReport]:
        """The reports for one topic's current publishers (resolved topic name, graph's publisher list)."""
        relative = self.relative(topic)
        if relative is None or not relative.startswith((HW_PREFIX, GUARD_IN_PREFIX)):
            return []
        time = float(now) if isinstance(now, (int, float)) and math.isfinite(now) else math.nan
        hw = relative.startswith(HW_PREFIX)
        kind = "rogue_hw_publisher" if hw else "unauthorised_publisher"
        intruders: dict[str, str] = {}
        try:
            listed = list(publishers)
        except TypeError:
            listed = []
        for publisher in listed[:MAX_PUBLISHERS]:
            try:
                fqn = publisher.fqn
            except (AttributeError, TypeError):
                fqn = f"<unreadable publisher {_show(publisher)}>"
            if not self._allowed(relative, fqn):
                intruders.setdefault(f"{fqn} -> {relative}", fqn)
        if len(listed) > MAX_PUBLISHERS:
            intruders.setdefault(f"<{len(listed) - MAX_PUBLISHERS} more publishers> -> {relative}", "?")
        out: list[AnomalyReport] = []
        current = {(kind, subject) for subject in intruders}
        previous = self._by_topic.get(relative, set())
        for key in sorted(previous - current):
            raised = self._active.pop(key)
            out.append(AnomalyReport(DETECTOR, key[0], raised.severity, False, key[1], 0.0, 0.0,
                                     f"{key[1].split(' -> ')[0]} no longer publishes on {relative}", time))
        for key in sorted(current - previous):
            fqn = intruders[key[1]]
            if hw:
                who = ", ".join(sorted(self.guard_nodes))
                text = f"{fqn} publishes on {relative}: only the guard ({who}) may drive the hardware"
            else:
                allowed = ", ".join(self.allowlist.get(relative, ())) or "nobody"
                text = f"{fqn} publishes on {relative} without being allowlisted (allowed: {allowed})"
            report = AnomalyReport(DETECTOR, kind, Severity.ERROR, True, key[1], 1.0, 0.0, text[:200], time)
            self._active[key] = report
            out.append(report)
        if current:
            self._by_topic[relative] = current
        else:
            self._by_topic.pop(relative, None)
        return out

    def active(self) -> list[AnomalyReport]:
        return [self._active[key] for key in sorted(self._active)]
