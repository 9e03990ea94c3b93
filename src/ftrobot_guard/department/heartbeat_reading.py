"""Reading a received heartbeat: its typed content and the canonical bytes its signature must cover.

A :class:`HeartbeatView` holds what the fleet monitor judges (identity, boot session, sequence,
stamp, mode, stale inputs, open incidents, certificate, the black-box checkpoint) and
``signed_bytes``, the canonical encoding (:mod:`ftrobot_guard.trust.signed_fields`, domain
``HEARTBEAT_DOMAIN``) of every field but ``signature``. Both come from one source in one reading,
so what is verified is what is judged. Two readers:

* :func:`read_heartbeat` reads a Heartbeat message object (any object with Heartbeat.msg's fields,
  e.g. ``ftrobot_msgs/Heartbeat`` as rclpy delivers it);
* :func:`read_serialized_heartbeat` reads the message as DDS delivers it, serialized (CDR, XCDR1,
  little-endian, as ``rmw_fastrtps`` and ``rmw_cyclonedds`` send it on every platform ROS 2 runs
  on), and builds the canonical
  bytes while it parses, without making message objects: making them costs more than the rest of
  the monitor's work on a heartbeat. Its layout is that of :data:`SERIALIZED_LAYOUT`; a reader of a
  node checks that the installed message types still have it. It refuses anything it does not
  read exactly as rclpy's deserializer would (other encodings, big-endian ones included, embedded
  NUL characters, invalid
  UTF-8, a boolean byte other than 0 or 1, ...): the caller then lets rclpy deserialize the message
  and reads that (:class:`FleetMonitor` does, given a deserializer), so the fast path never decides
  a case on its own. Tests check that both readers give the same view for any heartbeat.

A heartbeat that cannot be read (a field missing or of the wrong type, a NaN or infinite number,
a truncated buffer) raises :class:`HeartbeatFormatError`: it is *malformed*.
"""

from __future__ import annotations

import array
import struct
from typing import Any, NamedTuple

from ftrobot_guard.trust.signed_fields import (
    HEARTBEAT_DOMAIN,
    canonical_bytes,
    message_canonical_bytes,
    message_field_getter,
)


class HeartbeatFormatError(ValueError):
    """A heartbeat lacks a field, holds a wrong type or a number that is not finite, or cannot be parsed."""


class HeartbeatView(NamedTuple):
    """The typed content of one heartbeat and the canonical bytes its signature must cover.

    Made only by :func:`read_heartbeat` and :func:`read_serialized_heartbeat`.
    """

    identity_number: str
    robot_name: str
    department: str
    boot_id: str
    sequence: int
    stamp_ns: int
    uptime_s: float
    safety_mode_name: str
    stale_topics: tuple[str, ...]  # watched inputs the robot reports unhealthy
    guardian_on_duty: str
    open_incidents: int  # incident reports the robot has not had acknowledged yet
    log_checkpoint_sequence: int  # the black box's latest signed checkpoint (0: none)
    log_segment_id: str
    log_chain_head: str
    log_checkpoint_stamp_ns: int
    log_checkpoint_signature: bytes
    certificate: bytes
    signature: bytes
    signed_bytes: bytes  # canonical encoding of every field but the signature (HEARTBEAT_DOMAIN)


# -- from a message object -------------------------------------------------------------------------

_READ_FIELDS = ("identity_number", "robot_name", "department", "boot_id", "sequence", "uptime", "safety_mode_name",
                "watched_topics", "guardian_on_duty", "certificate", "signature", "header", "log_checkpoint_sequence",
                "log_segment_id", "log_chain_head", "log_checkpoint_stamp", "log_checkpoint_signature",
                "open_incidents")
_TEXT_FIELDS = ("identity_number", "robot_name", "department", "boot_id", "safety_mode_name", "guardian_on_duty",
                "log_segment_id", "log_chain_head")


def _octets(value: Any, name: str) -> bytes:
    kind = type(value)
    if kind is array.array and value.typecode == "B":
        return value.tobytes()  # type: ignore[no-any-return]
    if kind is bytes:
        return value  # type: ignore[no-any-return]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)) and all(type(b) is int and 0 <= b <= 255 for b in value):
        return bytes(value)
    raise HeartbeatFormatError(f"heartbeat field {name!r} has type {kind.__name__}")


def _stamp_ns(stamp: Any, name: str) -> int:
    sec, nanosec = message_field_getter(type(stamp), ("sec", "nanosec"))(stamp)
    if type(sec) is not int or type(nanosec) is not int:
        raise HeartbeatFormatError(f"heartbeat field {name!r} is not a pair of integers")
    return sec * 1_000_000_000 + nanosec


def _stale_topics(entries: Any) -> tuple[str, ...]:
    if not isinstance(entries, (list, tuple)):
        raise HeartbeatFormatError(f"heartbeat field 'watched_topics' has type {type(entries).__name__}")
    stale = []
    for index, entry in enumerate(entries):
        topic, healthy = message_field_getter(type(entry), ("topic", "healthy"))(entry)
        if type(topic) is not str or type(healthy) is not bool:
            raise HeartbeatFormatError(f"heartbeat field watched_topics[{index}] has a wrong type")
        if not healthy:
            stale.append(topic)
    return tuple(stale)


def read_heartbeat(message: Any) -> HeartbeatView:
    """The view of a Heartbeat message object; :class:`HeartbeatFormatError` when it is malformed."""
    try:
        signed_bytes = message_canonical_bytes(HEARTBEAT_DOMAIN, message)
        (number, name, department, boot_id, sequence, uptime, mode_name, topics, guardian, certificate, signature,
         header, log_sequence, segment, chain_head, log_stamp, log_signature, open_incidents) = message_field_getter(
            type(message), _READ_FIELDS)(message)
        texts = (number, name, department, boot_id, mode_name, guardian, segment, chain_head)
        if any(type(text) is not str for text in texts):
            wrong = [field for field, text in zip(_TEXT_FIELDS, texts, strict=True) if type(text) is not str]
            raise HeartbeatFormatError(f"heartbeat field {wrong[0]!r} is not a string")
        for field, value in (("sequence", sequence), ("log_checkpoint_sequence", log_sequence),
                             ("open_incidents", open_incidents)):
            if type(value) is not int or value < 0:
                raise HeartbeatFormatError(f"heartbeat field {field!r} is not a non-negative integer")
        if type(uptime) is not float:  # the encoding already refused NaN and infinities
            raise HeartbeatFormatError("heartbeat field 'uptime' is not a floating-point number")
        (stamp,) = message_field_getter(type(header), ("stamp",))(header)
        return HeartbeatView(
            number, name, department, boot_id, sequence, _stamp_ns(stamp, "header.stamp"), uptime, mode_name,
            _stale_topics(topics), guardian, open_incidents, log_sequence, segment, chain_head,
            _stamp_ns(log_stamp, "log_checkpoint_stamp"), _octets(log_signature, "log_checkpoint_signature"),
            _octets(certificate, "certificate"), _octets(signature, "signature"), signed_bytes,
        )
    except HeartbeatFormatError:
        raise
    except (AttributeError, TypeError, ValueError) as exc:
        raise HeartbeatFormatError(f"unreadable heartbeat: {exc}") from None


# -- from its serialized form (CDR) ----------------------------------------------------------------

# The message types read by read_serialized_heartbeat, field by field as rosidl lists them.
SERIALIZED_LAYOUT: dict[str, dict[str, str]] = {
    "ftrobot_msgs/Heartbeat": {
        "header": "std_msgs/Header", "format_version": "uint16", "identity_number": "string",
        "robot_name": "string", "department": "string", "boot_id": "string", "sequence": "uint64",
        "uptime": "double", "safety_mode": "uint8", "safety_mode_name": "string",
        "watched_topics": "sequence<ftrobot_msgs/TopicHealth>", "software_digest": "string",
        "config_digest": "string", "guardian_on_duty": "string", "open_incidents": "uint32",
        "log_checkpoint_sequence": "uint64",
        "log_segment_id": "string", "log_chain_head": "string", "log_checkpoint_stamp": "builtin_interfaces/Time",
        "log_checkpoint_signature": "sequence<uint8>", "certificate": "sequence<uint8>",
        "signature": "sequence<uint8>",
    },
    "ftrobot_msgs/TopicHealth": {
        "topic": "string", "ever_received": "boolean", "age": "double", "max_age": "double", "healthy": "boolean",
    },
    "std_msgs/Header": {"stamp": "builtin_interfaces/Time", "frame_id": "string"},
    "builtin_interfaces/Time": {"sec": "int32", "nanosec": "uint32"},
}

_PAYLOAD = 4  # after the encapsulation header; CDR aligns every value relative to this offset
_CDR_LE = b"\x00\x01"  # the encapsulation identifier of XCDR1, little-endian
_BE_U32 = struct.Struct(">I").pack
_BE_U16 = struct.Struct(">H").pack
_BE_F64 = struct.Struct(">d").pack


def _key(name: str) -> bytes:
    raw = name.encode("ascii")
    return b"s" + _BE_U32(len(raw)) + raw


def _keys(*names: str) -> tuple[bytes, ...]:
    """Canonical encodings of field names (given in their canonical order: sorted by their bytes)."""
    return tuple(_key(name) for name in names)


_SHORT = 4096
_STRING_HEADS = tuple(b"s" + _BE_U32(size) for size in range(_SHORT))
_INT_HEADS = tuple(b"i" + _BE_U16(size) for size in range(32))
_TRUE_FALSE = (b"N", b"Y")
_STAMP_HEAD = b"d" + _BE_U32(2) + _key("nanosec")
_STAMP_SEC = _key("sec")
_HEADER_HEAD = b"d" + _BE_U32(2) + _key("frame_id")
_HEADER_STAMP = _key("stamp")
_TOPIC_KEYS = _keys("age", "ever_received", "healthy", "max_age", "topic")
_TOPIC_HEAD = b"d" + _BE_U32(5) + _TOPIC_KEYS[0]
_HEARTBEAT_KEYS = _keys(
    "boot_id", "certificate", "config_digest", "department", "format_version", "guardian_on_duty", "header",
    "identity_number", "log_chain_head", "log_checkpoint_sequence", "log_checkpoint_signature",
    "log_checkpoint_stamp", "log_segment_id", "open_incidents", "robot_name", "safety_mode", "safety_mode_name",
    "sequence", "software_digest", "uptime", "watched_topics",
)


_U32 = struct.Struct("<I").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_STAMP = struct.Struct("<iI").unpack_from
_U64_F64 = struct.Struct("<Qd").unpack_from
_F64_F64 = struct.Struct("<dd").unpack_from


def _integer(value: int) -> bytes:
    digits = str(value).encode("ascii")
    return _INT_HEADS[len(digits)] + digits


_SMALL_INTEGERS = tuple(_integer(value) for value in range(256))  # uint8 fields, small uint16 ones


def _float(value: float, name: str) -> bytes:
    if value - value != 0.0:
        raise HeartbeatFormatError(f"heartbeat field {name!r}: {value!r} is not a finite number")
    return b"f" + _BE_F64(value)


def _string(data: bytes, at: int, name: str) -> tuple[bytes, str, int]:
    """The CDR string at ``at``: its canonical encoding, its text and the offset after it.

    Raises IndexError (truncated) when the string runs past the end of ``data``.
    """
    at += -(at - _PAYLOAD) & 3
    (size,) = _U32(data, at)
    end = at + 4 + size
    if size == 0 or data[end - 1] != 0:
        raise HeartbeatFormatError(f"heartbeat field {name!r} is not a NUL-terminated string")
    raw = data[at + 4:end - 1]
    if b"\x00" in raw:
        raise HeartbeatFormatError(f"heartbeat field {name!r} holds a NUL character")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HeartbeatFormatError(f"heartbeat field {name!r} is not UTF-8") from None
    return (_STRING_HEADS[size - 1] if size <= _SHORT else b"s" + _BE_U32(size - 1)) + raw, text, end


def _octet_sequence(data: bytes, at: int, name: str) -> tuple[bytes, bytes, int]:
    """The CDR ``uint8[]`` at ``at``: its canonical encoding, its bytes and the offset after it."""
    at += -(at - _PAYLOAD) & 3
    (size,) = _U32(data, at)
    at += 4
    if at + size > len(data):
        raise HeartbeatFormatError(f"heartbeat field {name!r} runs past the end of the message")
    raw = data[at:at + size]
    return b"b" + _BE_U32(size) + raw, raw, at + size


def _boolean(value: int, name: str) -> bytes:
    if value > 1:
        raise HeartbeatFormatError(f"heartbeat field {name!r} is not a boolean byte")
    return _TRUE_FALSE[value]


def read_serialized_heartbeat(data: bytes) -> HeartbeatView:
    """The view of a serialized (CDR) Heartbeat; :class:`HeartbeatFormatError` when it cannot read it exactly.

    The canonical bytes are those :func:`read_heartbeat` gives for the message rclpy deserializes
    from ``data``.
    """
    try:
        return _read_serialized(data if type(data) is bytes else bytes(data))
    except HeartbeatFormatError:
        raise
    except (struct.error, IndexError) as exc:
        raise HeartbeatFormatError(f"serialized heartbeat is truncated: {exc}") from None


def _read_serialized(data: bytes) -> HeartbeatView:
    if data[:2] != _CDR_LE:
        raise HeartbeatFormatError(f"serialized heartbeat has encapsulation {data[:2].hex()}, not little-endian CDR")
    # header
    sec, nanosec = _STAMP(data, _PAYLOAD)
    frame_id, _, at = _string(data, _PAYLOAD + 8, "header.frame_id")
    header = _HEADER_HEAD + frame_id + _HEADER_STAMP + _STAMP_HEAD + _integer(nanosec) + _STAMP_SEC + _integer(sec)
    at += (at - _PAYLOAD) & 1
    (format_version,) = _U16(data, at)
    identity_number, number, at = _string(data, at + 2, "identity_number")
    robot_name, name, at = _string(data, at, "robot_name")
    department, department_text, at = _string(data, at, "department")
    boot_id, boot, at = _string(data, at, "boot_id")
    at += -(at - _PAYLOAD) & 7
    sequence, uptime = _U64_F64(data, at)
    safety_mode = data[at + 16]
    safety_mode_name, mode_name, at = _string(data, at + 17, "safety_mode_name")
    # watched topics
    at += -(at - _PAYLOAD) & 3
    (count,) = _U32(data, at)
    at += 4
    if count > len(data) - at:
        raise HeartbeatFormatError("heartbeat field 'watched_topics' runs past the end of the message")
    topics = [b"l" + _BE_U32(count)]
    stale = []
    for index in range(count):
        topic, topic_text, at = _string(data, at, f"watched_topics[{index}].topic")
        ever_received = _boolean(data[at], f"watched_topics[{index}].ever_received")
        at += 1
        at += -(at - _PAYLOAD) & 7
        age, max_age = _F64_F64(data, at)
        healthy = data[at + 16]
        at += 17
        topics += (_TOPIC_HEAD, _float(age, f"watched_topics[{index}].age"), _TOPIC_KEYS[1], ever_received,
                   _TOPIC_KEYS[2], _boolean(healthy, f"watched_topics[{index}].healthy"), _TOPIC_KEYS[3],
                   _float(max_age, f"watched_topics[{index}].max_age"), _TOPIC_KEYS[4], topic)
        if not healthy:
            stale.append(topic_text)
    software_digest, _, at = _string(data, at, "software_digest")
    config_digest, _, at = _string(data, at, "config_digest")
    guardian_on_duty, guardian, at = _string(data, at, "guardian_on_duty")
    at += -(at - _PAYLOAD) & 3
    (open_incidents,) = _U32(data, at)
    at += 4
    at += -(at - _PAYLOAD) & 7
    (log_sequence,) = _U64(data, at)
    log_segment_id, segment, at = _string(data, at + 8, "log_segment_id")
    log_chain_head, chain_head, at = _string(data, at, "log_chain_head")
    at += -(at - _PAYLOAD) & 3
    log_sec, log_nanosec = _STAMP(data, at)
    log_signature, log_signature_raw, at = _octet_sequence(data, at + 8, "log_checkpoint_signature")
    certificate, certificate_raw, at = _octet_sequence(data, at, "certificate")
    _, signature, at = _octet_sequence(data, at, "signature")
    keys = _HEARTBEAT_KEYS
    version = _SMALL_INTEGERS[format_version] if format_version < 256 else _integer(format_version)
    signed_bytes = b"".join((
        _DOCUMENT_HEAD,
        keys[0], boot_id, keys[1], certificate, keys[2], config_digest, keys[3], department,
        keys[4], version, keys[5], guardian_on_duty, keys[6], header, keys[7], identity_number,
        keys[8], log_chain_head, keys[9], _integer(log_sequence), keys[10], log_signature,
        keys[11], _STAMP_HEAD, _integer(log_nanosec), _STAMP_SEC, _integer(log_sec), keys[12], log_segment_id,
        keys[13], _SMALL_INTEGERS[open_incidents] if open_incidents < 256 else _integer(open_incidents),
        keys[14], robot_name, keys[15], _SMALL_INTEGERS[safety_mode], keys[16], safety_mode_name,
        keys[17], _integer(sequence), keys[18], software_digest, keys[19], _float(uptime, "uptime"),
        keys[20], *topics,
    ))
    return HeartbeatView(
        number, name, department_text, boot, sequence, sec * 1_000_000_000 + nanosec, uptime, mode_name,
        tuple(stale), guardian, open_incidents, log_sequence, segment, chain_head,
        log_sec * 1_000_000_000 + log_nanosec, log_signature_raw, certificate_raw, signature, signed_bytes,
    )


# The canonical encoding's start: the domain prefix, then a mapping of the 21 signed fields.
_DOCUMENT_HEAD = canonical_bytes(HEARTBEAT_DOMAIN, {})[:-4] + _BE_U32(len(_HEARTBEAT_KEYS))
