"""Recording policy: topic specs, decimation, the incident ring."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftrobot_guard.blackbox.record_format import Entry, Tier
from ftrobot_guard.blackbox.recording_policy import (
    IncidentRing,
    TopicSpec,
    TopicSpecError,
    TwoTierRecorder,
    parse_topic_spec,
    parse_topic_specs,
)

MS = 1_000_000


def test_parse_valid_specs() -> None:
    assert parse_topic_spec("joint_states|sensor_msgs/msg/JointState|state|2.5|sensor") == TopicSpec(
        "joint_states", "sensor_msgs/msg/JointState", "state", 2.5, "sensor")
    assert parse_topic_spec("/incident|ftrobot_msgs/msg/IncidentReport|incident").qos == "reliable"


@pytest.mark.parametrize("text, field", [
    ("a|std_msgs/msg/String", "expected"),
    ("a b|std_msgs/msg/String|event", "topic"),
    ("a|std_msgs/String|event", "type"),
    ("a|std_msgs/msg/String|often", "tier"),
    ("a|std_msgs/msg/String|state|nan", "long_term_hz"),
    ("a|std_msgs/msg/String|state|-1", "long_term_hz"),
    ("a|std_msgs/msg/String|event|5", "tier 'state' only"),
    ("a|std_msgs/msg/String|state|1|fast", "qos"),
])
def test_bad_specs_name_the_field(text: str, field: str) -> None:
    with pytest.raises(TopicSpecError, match=field):
        parse_topic_spec(text)


def test_duplicate_topics_refused() -> None:
    with pytest.raises(TopicSpecError, match="twice"):
        parse_topic_specs(["a|std_msgs/msg/String|event", "a|std_msgs/msg/Bool|event"])


@given(st.text(max_size=80))
def test_spec_parser_only_raises_spec_errors(text: str) -> None:
    try:
        parse_topic_spec(text)
    except TopicSpecError:
        pass


def _recorder(post_s: float = 1.0) -> tuple[TwoTierRecorder, list[Entry], dict[str, TopicSpec]]:
    specs = parse_topic_specs(["js|sensor_msgs/msg/JointState|state|10", "ev|std_msgs/msg/String|event",
                               "inc|std_msgs/msg/Bool|incident"])
    sink: list[Entry] = []
    return TwoTierRecorder(specs, sink.append, ring_seconds=2.0, ring_max_bytes=1 << 20, post_incident_s=post_s), \
        sink, {s.topic: s for s in specs}


@pytest.mark.clause("2.7")
def test_decimation_events_guardian_and_freeze() -> None:
    recorder, sink, specs = _recorder()
    recorder.guardian = "G-7"
    for i in range(500):  # 5 s at 100 Hz
        recorder.on_message(specs["js"], b"%d" % i, i * 10 * MS)
    long_term = [e for e in sink if e.tier == Tier.LONG_TERM]
    assert len(long_term) == 50  # 10 Hz
    recorder.on_message(specs["ev"], b"e", 5000 * MS)
    assert sink[-1].tier == Tier.EVENT and sink[-1].guardian == "G-7"
    before = len(sink)
    recorder.on_message(specs["inc"], b"\x01", 5001 * MS)
    dumped = [e for e in sink[before + 1:] if e.tier == Tier.FULL_RATE]
    assert 150 <= len(dumped) <= 181  # last 2 s minus what the long-term log already holds
    times = [e.time_ns for e in dumped]
    assert min(times) >= 3000 * MS - 10 * MS
    recorder.on_message(specs["js"], b"post", 5500 * MS)
    assert sink[-1].tier == Tier.FULL_RATE  # within post_incident_s
    recorder.on_message(specs["js"], b"later", 7000 * MS)
    assert sink[-1].tier == Tier.LONG_TERM  # window over, decimated again


def test_a_republished_incident_is_recorded_but_freezes_the_ring_once() -> None:
    recorder, sink, specs = _recorder(post_s=0.5)
    for i in range(300):
        recorder.on_message(specs["js"], b"%d" % i, i * 10 * MS)
    recorder.on_message(specs["inc"], b"report-1", 3000 * MS)
    assert recorder.incidents == 1
    recorder.on_message(specs["inc"], b"report-1", 9001 * MS)   # the same report again
    assert recorder.incidents == 1 and sink[-1].data == b"report-1" and sink[-1].tier == Tier.EVENT
    recorder.on_message(specs["inc"], b"report-1 acknowledged", 9002 * MS)
    assert recorder.incidents == 2


def test_ring_bounded_by_bytes() -> None:
    ring = IncidentRing(seconds=100.0, max_bytes=1000)
    spec = TopicSpec("js", "sensor_msgs/msg/JointState", "state")
    from ftrobot_guard.blackbox.recording_policy import _RingItem

    for i in range(100):
        ring.push(_RingItem(i * MS, spec, bytes(100), "", False))
    assert ring.size <= 1000 and len(ring) == 10 and ring.evicted_for_space == 90


def test_ring_dump_goes_to_the_backlog_sink() -> None:
    specs = parse_topic_specs(["js|sensor_msgs/msg/JointState|state|1", "inc|std_msgs/msg/Bool|incident"])
    live: list[Entry] = []
    backlog: list[Entry] = []
    recorder = TwoTierRecorder(specs, live.append, ring_seconds=2.0, ring_max_bytes=1 << 20, post_incident_s=1.0,
                               backlog_sink=backlog.append)
    by_topic = {s.topic: s for s in specs}
    for i in range(100):
        recorder.on_message(by_topic["js"], b"%d" % i, i * 10 * MS)
    recorder.on_message(by_topic["inc"], b"\x01", 1000 * MS)
    recorder.on_message(by_topic["js"], b"post", 1010 * MS)
    logged = {e.data for e in live if e.tier == Tier.LONG_TERM}
    assert len(backlog) >= 95 and all(e.tier == Tier.FULL_RATE and e.data not in logged for e in backlog)
    assert [e.data for e in live[-2:]] == [b"\x01", b"post"]  # the incident and full rate after it stay live
