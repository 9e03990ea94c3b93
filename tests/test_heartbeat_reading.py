"""Reading heartbeats: the serialized (CDR) reader agrees with rclpy's deserializer and the message reader."""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.department.fleet_monitor import FleetMonitor, Refusal
from ftrobot_guard.department.heartbeat_reading import (
    SERIALIZED_LAYOUT,
    HeartbeatFormatError,
    read_heartbeat,
    read_serialized_heartbeat,
)
from ftrobot_guard.trust.certificates import certificate_der, create_department_ca, issue_robot_certificate
from ftrobot_guard.trust.identity import make_identity_number
from ftrobot_guard.trust.signed_fields import (
    HEARTBEAT_DOMAIN,
    canonical_bytes,
    message_canonical_bytes,
    message_fields,
    sign_fields,
)

msgs = pytest.importorskip("ftrobot_msgs.msg")
serialization = pytest.importorskip("rclpy.serialization")
serialize, deserialize = serialization.serialize_message, serialization.deserialize_message


def _heartbeat(**fields: Any) -> Any:
    topics = fields.pop("topics", [("/r1/joint_states", True, 0.002, 0.1, True), ("/r1/imu", True, 0.3, 0.1, False)])
    stamp = fields.pop("stamp", (1_800_000_000, 123_456_789))
    msg = msgs.Heartbeat(**{
        "format_version": 1, "identity_number": "440304-RB-2026-000123-8", "robot_name": "Xiao Fu",
        "department": "Futian Data Bureau", "boot_id": "0f" * 16, "sequence": 7, "uptime": 7.25, "safety_mode": 1,
        "safety_mode_name": "NORMAL", "software_digest": "ab" * 32, "config_digest": "cd" * 32,
        "guardian_on_duty": "G-0001", "open_incidents": 2, "log_checkpoint_sequence": 700, "log_segment_id": "5e" * 16,
        "log_chain_head": "ef" * 32, "log_checkpoint_signature": bytes(range(64)), "certificate": bytes(460),
        "signature": bytes(range(64, 128)), **fields,
    })
    msg.watched_topics = [msgs.TopicHealth(topic=t, ever_received=e, age=a, max_age=m, healthy=h)
                          for t, e, a, m, h in topics]
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.log_checkpoint_stamp.sec, msg.log_checkpoint_stamp.nanosec = stamp[0] - 1, stamp[1]
    return msg


def test_the_serialized_layout_is_that_of_the_installed_messages() -> None:
    std_msgs = pytest.importorskip("std_msgs.msg")
    builtin = pytest.importorskip("builtin_interfaces.msg")
    installed = {"ftrobot_msgs/Heartbeat": msgs.Heartbeat, "ftrobot_msgs/TopicHealth": msgs.TopicHealth,
                 "std_msgs/Header": std_msgs.Header, "builtin_interfaces/Time": builtin.Time}
    assert {name: cls.get_fields_and_field_types() for name, cls in installed.items()} == SERIALIZED_LAYOUT


def test_a_serialized_heartbeat_reads_as_its_message() -> None:
    msg = _heartbeat()
    view = read_serialized_heartbeat(serialize(msg))
    assert view == read_heartbeat(msg)
    assert view.signed_bytes == message_canonical_bytes(HEARTBEAT_DOMAIN, msg)
    assert (view.stale_topics, view.log_checkpoint_sequence, view.log_checkpoint_stamp_ns) == (
        ("/r1/imu",), 700, 1_799_999_999_123_456_789)
    assert view.open_incidents == 2


@pytest.mark.clause("4.5", "6.4c")
@pytest.mark.parametrize("count", [0, 1, 255, 256, 70_000, 2**32 - 1])
def test_open_incidents_is_read_and_signed(count: int) -> None:
    """The uint32 after guardian_on_duty (4-byte aligned) is read, and covered by the signed bytes."""
    for guardian in ("", "G", "G-0", "G-00", "G-001"):  # every alignment of the field after the string
        msg = _heartbeat(open_incidents=count, guardian_on_duty=guardian)
        view = read_serialized_heartbeat(serialize(msg))
        assert view.open_incidents == count == read_heartbeat(msg).open_incidents
        assert view.signed_bytes == canonical_bytes(HEARTBEAT_DOMAIN, message_fields(msg))
        other = _heartbeat(open_incidents=(count + 1) % 2**32, guardian_on_duty=guardian)
        assert read_serialized_heartbeat(serialize(other)).signed_bytes != view.signed_bytes


texts = st.text(max_size=40)
finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(texts, min_size=10, max_size=10), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), finite,
    st.integers(0, 255), st.integers(0, 2**16 - 1), st.integers(0, 2**32 - 1),
    st.lists(st.tuples(texts, st.booleans(), finite, finite, st.booleans()), max_size=5),
    st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**32 - 1)),
    st.binary(max_size=700), st.binary(max_size=80), st.binary(max_size=80),
)
def test_any_heartbeat_reads_the_same_serialized_and_as_a_message(
    strings: list[str], sequence: int, log_sequence: int, uptime: float, mode: int, version: int, open_incidents: int,
    topics: list[tuple[str, bool, float, float, bool]], stamp: tuple[int, int], certificate: bytes,
    log_signature: bytes, signature: bytes,
) -> None:
    msg = _heartbeat(
        identity_number=strings[0], robot_name=strings[1], department=strings[2], boot_id=strings[3],
        safety_mode_name=strings[4], software_digest=strings[5], config_digest=strings[6],
        guardian_on_duty=strings[7], log_segment_id=strings[8], log_chain_head=strings[9], sequence=sequence,
        log_checkpoint_sequence=log_sequence, uptime=uptime, safety_mode=mode, format_version=version,
        open_incidents=open_incidents,
        topics=topics, stamp=stamp, certificate=certificate, log_checkpoint_signature=log_signature,
        signature=signature,
    )
    msg.header.frame_id = strings[9][::-1]
    data = serialize(msg)
    if any("\x00" in text for text in [*strings, *(t[0] for t in topics)]):
        return  # rclpy's serializer cuts a string at NUL; the reader refuses NUL characters (tested below)
    view = read_serialized_heartbeat(data)
    assert view == read_heartbeat(deserialize(data, msgs.Heartbeat))
    assert view.open_incidents == open_incidents
    assert view.signed_bytes == canonical_bytes(HEARTBEAT_DOMAIN, message_fields(deserialize(data, msgs.Heartbeat)))


@settings(max_examples=300, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 6))
def test_damaged_serialized_heartbeats_are_refused_or_read_as_rclpy_reads_them(rnd: random.Random, flips: int) -> None:
    """Whatever the bytes, the reader refuses them cleanly, or reads what rclpy's deserializer reads."""
    data = bytearray(serialize(_heartbeat()))
    for _ in range(flips):
        data[rnd.randrange(len(data))] = rnd.randrange(256)
    if rnd.random() < 0.3:
        del data[rnd.randrange(len(data)):]
    try:
        view = read_serialized_heartbeat(bytes(data))
    except HeartbeatFormatError:
        return
    assert view == read_heartbeat(deserialize(bytes(data), msgs.Heartbeat))


@pytest.mark.parametrize("damage, says", [
    (lambda d: b"\x00\x00" + d[2:], "encapsulation"),  # big-endian CDR: left to rclpy's deserializer
    (lambda d: d[:22], "truncated"),
    (lambda d: d[:40], "truncated"),
    (lambda d: d.replace(b"000123-8\x00", b"000123-8!", 1), "identity_number.*NUL-terminated"),
    (lambda d: d[:-100], "past the end"),
    (lambda d: d[:12] + b"\x09\x00\x00\x00" + d[16:], "header.frame_id"),  # frame_id length runs into other bytes
])
def test_unreadable_serialized_heartbeats(damage: Any, says: str) -> None:
    with pytest.raises(HeartbeatFormatError, match=says):
        read_serialized_heartbeat(damage(serialize(_heartbeat())))


def test_non_finite_numbers_and_bad_booleans_are_refused() -> None:
    with pytest.raises(HeartbeatFormatError, match="uptime"):
        read_serialized_heartbeat(serialize(_heartbeat(uptime=math.inf)))
    with pytest.raises(HeartbeatFormatError, match=r"watched_topics\[0\].age"):
        read_serialized_heartbeat(serialize(_heartbeat(topics=[("t", True, math.nan, 0.1, True)])))
    data = bytearray(serialize(_heartbeat(topics=[("t", True, 0.5, 0.1, True)])))
    at = data.index(b"t\x00") + 2  # ever_received follows the topic's NUL
    data[at] = 2
    with pytest.raises(HeartbeatFormatError, match="ever_received"):
        read_serialized_heartbeat(bytes(data))


def test_a_nul_character_or_invalid_utf8_is_left_to_rclpy() -> None:
    data = serialize(_heartbeat(robot_name="Xiao Fu"))
    with pytest.raises(HeartbeatFormatError, match="NUL"):
        read_serialized_heartbeat(data.replace(b"Xiao Fu", b"Xiao\x00Fu"))
    with pytest.raises(HeartbeatFormatError, match="UTF-8"):
        read_serialized_heartbeat(data.replace(b"Xiao Fu", b"Xiao\xffFu"))


def test_the_monitor_judges_serialized_heartbeats_and_asks_the_deserializer_about_the_rest() -> None:
    now = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    ca_key = ed25519.Ed25519PrivateKey.generate()
    ca = create_department_ca("Futian Data Bureau", ca_key, 30, now=now - dt.timedelta(days=1))
    key = ed25519.Ed25519PrivateKey.generate()
    number = make_identity_number("440304", 2026, 123)
    cert = certificate_der(issue_robot_certificate(ca, ca_key, key.public_key(), number, "Xiao Fu",
                                                   "Futian Data Bureau", now - dt.timedelta(days=1),
                                                   now + dt.timedelta(days=9)))
    asked: list[bytes] = []

    def deserializer(data: bytes) -> Any:
        asked.append(data)
        return deserialize(data, msgs.Heartbeat)

    mon = FleetMonitor([ca], clock=lambda: now, deserialize=deserializer)
    msg = _heartbeat(identity_number=str(number), certificate=cert)
    msg.signature = sign_fields(key, HEARTBEAT_DOMAIN, message_fields(msg))
    outcome = mon.on_heartbeat(serialize(msg), 0.0)
    assert outcome.accepted and outcome.view == read_heartbeat(msg) and asked == []
    big_endian = b"\x00\x00" + serialize(msg)[2:]
    outcome = mon.on_heartbeat(big_endian, 1.0)  # rclpy reads it with the wrong byte order: garbage
    assert asked == [big_endian] and not outcome.accepted
    outcome = mon.on_heartbeat(b"\x00\x01\x00\x00\x01", 2.0)
    assert outcome.refusal is Refusal.MALFORMED and "not a serialized Heartbeat" in outcome.reason
    without = FleetMonitor([ca], clock=lambda: now)
    assert without.on_heartbeat(big_endian, 0.0).refusal is Refusal.MALFORMED
