"""Canonical encoding and Ed25519 signatures of message fields."""

from __future__ import annotations

import array
import math
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.trust.signed_fields import (
    HEARTBEAT_DOMAIN,
    canonical_bytes,
    message_canonical_bytes,
    message_fields,
    sign_fields,
    verify_fields,
)

KEY = ed25519.Ed25519PrivateKey.generate()
PUB = KEY.public_key()

FIELDS: dict[str, Any] = {
    "identity_number": "440304-RB-2026-000123-8",
    "sequence": 7,
    "uptime": 12.5,
    "ok": True,
    "certificate": b"\x30\x82",
    "watched_topics": [{"topic": "imu", "age": 0.01, "healthy": True}],
    "header": {"stamp": {"sec": 1, "nanosec": 2}, "frame_id": ""},
}


@pytest.mark.clause("3.1b")
def test_sign_and_verify() -> None:
    signature = sign_fields(KEY, HEARTBEAT_DOMAIN, FIELDS)
    assert len(signature) == 64
    assert verify_fields(PUB, HEARTBEAT_DOMAIN, FIELDS, signature)
    assert not verify_fields(ed25519.Ed25519PrivateKey.generate().public_key(), HEARTBEAT_DOMAIN, FIELDS, signature)


@pytest.mark.clause("3.1b")
def test_domain_separation() -> None:
    signature = sign_fields(KEY, HEARTBEAT_DOMAIN, FIELDS)
    assert not verify_fields(PUB, "ftrobot/incident/v1", FIELDS, signature)
    assert canonical_bytes("a", {}) != canonical_bytes("b", {})
    for bad in ("", "\x00", "héllo", 7):
        with pytest.raises(ValueError, match="domain"):
            canonical_bytes(bad, {})  # type: ignore[arg-type]


def test_signature_of_wrong_length_or_type_is_false() -> None:
    signature = sign_fields(KEY, HEARTBEAT_DOMAIN, FIELDS)
    assert not verify_fields(PUB, HEARTBEAT_DOMAIN, FIELDS, signature[:-1])
    assert not verify_fields(PUB, HEARTBEAT_DOMAIN, FIELDS, signature + b"\x00")
    assert not verify_fields(PUB, HEARTBEAT_DOMAIN, FIELDS, b"")
    assert not verify_fields(PUB, HEARTBEAT_DOMAIN, FIELDS, "x" * 64)  # type: ignore[arg-type]
    assert verify_fields(PUB, HEARTBEAT_DOMAIN, FIELDS, bytearray(signature))


def test_types_are_strict() -> None:
    encodings = {canonical_bytes("d", {"v": value}) for value in (1, 1.0, True, "1", b"1", [1])}
    assert len(encodings) == 6
    assert canonical_bytes("d", {"v": 0}) != canonical_bytes("d", {"v": False})
    assert canonical_bytes("d", {"v": [1, 2]}) == canonical_bytes("d", {"v": (1, 2)})
    assert canonical_bytes("d", {"v": b"ab"}) == canonical_bytes("d", {"v": bytearray(b"ab")})
    assert canonical_bytes("d", {"v": b"ab"}) == canonical_bytes("d", {"v": array.array("B", b"ab")})
    assert canonical_bytes("d", {"v": [1.5, 2.0]}) == canonical_bytes("d", {"v": array.array("d", [1.5, 2.0])})


def test_boundaries_are_unambiguous() -> None:
    assert canonical_bytes("d", {"a": "bc"}) != canonical_bytes("d", {"ab": "c"})
    assert canonical_bytes("d", {"a": ["b", "c"]}) != canonical_bytes("d", {"a": ["bc"]})
    assert canonical_bytes("d", {"a": {"b": 1}}) != canonical_bytes("d", {"a": [{"b": 1}]})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1.0, math.nan], {"x": math.inf}])
def test_non_finite_numbers_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        canonical_bytes("d", {"v": value})
    with pytest.raises(ValueError):
        sign_fields(KEY, "d", {"v": value})
    assert not verify_fields(PUB, "d", {"v": value}, b"\x00" * 64)


@pytest.mark.parametrize("value", [None, object(), {1, 2}, 1j, array.array("B", b"x").__iter__()])
def test_unknown_types_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="unsupported type"):
        canonical_bytes("d", {"v": value})


def test_bad_keys_and_roots() -> None:
    with pytest.raises(ValueError, match="not a string"):
        canonical_bytes("d", {1: "x"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="mapping"):
        canonical_bytes("d", [("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="UTF-8"):
        canonical_bytes("d", {"v": "\ud800"})
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper"):
        canonical_bytes("d", {"v": deep})


def test_wrong_key_types_are_refused() -> None:
    with pytest.raises(ValueError, match="Ed25519 private key"):
        sign_fields(PUB, "d", {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Ed25519 public key"):
        verify_fields(KEY, "d", {}, b"")  # type: ignore[arg-type]


def test_error_names_the_field_path() -> None:
    with pytest.raises(ValueError, match=r"watched_topics\[1\]\.age"):
        canonical_bytes("d", {"watched_topics": [{"age": 1.0}, {"age": math.nan}]})


class _Time:
    _fields: ClassVar[dict[str, str]] = {"sec": "int32", "nanosec": "uint32"}

    def __init__(self, sec: int, nanosec: int) -> None:
        self.sec, self.nanosec = sec, nanosec

    @classmethod
    def get_fields_and_field_types(cls) -> dict[str, str]:
        return dict(cls._fields)


class _Msg:
    @classmethod
    def get_fields_and_field_types(cls) -> dict[str, str]:
        return {"stamp": "builtin_interfaces/Time", "name": "string", "data": "sequence<uint8>",
                "values": "sequence<double>", "items": "sequence<builtin_interfaces/Time>",
                "signature": "sequence<uint8>"}

    def __init__(self) -> None:
        self.stamp = _Time(3, 4)
        self.name = "x"
        self.data = array.array("B", b"\x01\x02")
        self.values = array.array("d", [0.5])
        self.items = [_Time(1, 2)]
        self.signature = array.array("B", b"\x00" * 64)


def test_message_fields_of_a_rosidl_like_message() -> None:
    assert message_fields(_Msg()) == {
        "stamp": {"sec": 3, "nanosec": 4},
        "name": "x",
        "data": b"\x01\x02",
        "values": [0.5],
        "items": [{"sec": 1, "nanosec": 2}],
    }
    assert "signature" in message_fields(_Msg(), exclude=())
    with pytest.raises(ValueError, match="not a ROS message"):
        message_fields({"a": 1})


def test_message_fields_of_a_real_ros_message() -> None:
    sensor_msgs = pytest.importorskip("sensor_msgs.msg")
    image = sensor_msgs.Image(height=2, width=1, encoding="mono8", step=1, data=b"\x07\x08")
    image.header.stamp.sec = 5
    fields = message_fields(image, exclude=("header",))
    assert fields == {"height": 2, "width": 1, "encoding": "mono8", "is_bigendian": 0, "step": 1, "data": b"\x07\x08"}
    info = sensor_msgs.CameraInfo()
    assert message_fields(info)["k"] == [0.0] * 9
    signature = sign_fields(KEY, "d", message_fields(image))
    assert verify_fields(PUB, "d", message_fields(image), signature)


# -- properties ----------------------------------------------------------------------------------

scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.binary(max_size=12),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=12,
)
field_maps = st.dictionaries(st.text(max_size=8), values, max_size=6)


@settings(max_examples=200, deadline=None)
@given(field_maps, st.randoms(use_true_random=False))
def test_dict_order_does_not_matter(fields: dict[str, Any], rnd: Any) -> None:
    items = list(fields.items())
    rnd.shuffle(items)
    assert canonical_bytes("d", dict(items)) == canonical_bytes("d", fields)


def _differs(a: Any, b: Any) -> bool:
    # "different" as the encoding sees it: type-strict, -0.0 differs from 0.0
    if type(a) is not type(b):
        return True
    if isinstance(a, float):
        return a != b or math.copysign(1, a) != math.copysign(1, b)
    return bool(a != b)


@settings(max_examples=30, deadline=None)
@given(field_maps.filter(bool), st.data())
@pytest.mark.clause("3.1b", "5.1a")
def test_any_mutated_field_fails_verification(fields: dict[str, Any], data: st.DataObject) -> None:
    signature = sign_fields(KEY, HEARTBEAT_DOMAIN, fields)
    assert verify_fields(PUB, HEARTBEAT_DOMAIN, fields, signature)
    name = data.draw(st.sampled_from(sorted(fields)))
    replacement = data.draw(values.filter(lambda v: _differs(v, fields[name]) or repr(v) != repr(fields[name])))
    mutated = dict(fields)
    mutated[name] = replacement
    assert not verify_fields(PUB, HEARTBEAT_DOMAIN, mutated, signature)
    removed = dict(fields)
    del removed[name]
    assert not verify_fields(PUB, HEARTBEAT_DOMAIN, removed, signature)
    added = dict(fields)
    added[name + "\x00extra"] = 0
    assert not verify_fields(PUB, HEARTBEAT_DOMAIN, added, signature)


@settings(max_examples=200, deadline=None)
@given(field_maps, field_maps)
def test_encoding_is_injective_on_distinct_maps(a: dict[str, Any], b: dict[str, Any]) -> None:
    if canonical_bytes("d", a) == canonical_bytes("d", b):
        assert repr(sorted(a.items())) == repr(sorted(b.items()))


# -- direct encoding of messages -----------------------------------------------------------------


def test_message_canonical_bytes_equals_the_mapping_path_on_a_rosidl_like_message() -> None:
    message = _Msg()
    assert message_canonical_bytes("d", message) == canonical_bytes("d", message_fields(message))
    everything = canonical_bytes("d", message_fields(message, exclude=()))
    assert message_canonical_bytes("d", message, exclude=()) == everything
    with pytest.raises(ValueError, match="not a ROS message"):
        message_canonical_bytes("d", {"a": 1})


def test_message_canonical_bytes_refuses_what_the_mapping_path_refuses() -> None:
    message = _Msg()
    message.items = [_Time(1, 2), _Time(math.nan, 0)]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"items\[1\]\.sec: nan is not a finite number"):
        message_canonical_bytes("d", message)
    message = _Msg()
    message.name = "\ud800"
    with pytest.raises(ValueError, match="UTF-8"):
        message_canonical_bytes("d", message)
    message.name = None  # type: ignore[assignment]
    with pytest.raises(ValueError, match="unsupported"):
        message_canonical_bytes("d", message)


def test_message_canonical_bytes_of_real_ros_messages() -> None:
    sensor_msgs = pytest.importorskip("sensor_msgs.msg")
    info = sensor_msgs.CameraInfo(width=4, distortion_model="plumb_bob", d=[0.1, -0.2])
    info.header.stamp.sec = 9
    info.roi.do_rectify = True
    assert message_canonical_bytes("d", info) == canonical_bytes("d", message_fields(info))
    image = sensor_msgs.Image(height=2, width=1, encoding="mono8", step=1, data=b"\x07\x08")
    assert message_canonical_bytes("d", image, exclude=("header",)) == canonical_bytes(
        "d", message_fields(image, exclude=("header",))
    )


texts = st.text(max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(
    st.tuples(texts, texts, texts, texts, texts, texts, texts),
    st.integers(0, 2**64 - 1), finite, st.integers(0, 255),
    st.lists(st.tuples(texts, st.booleans(), finite, finite, st.booleans()), max_size=4),
    st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**32 - 1),
    st.binary(max_size=600), st.binary(max_size=70),
)
def test_heartbeat_encoded_directly_equals_the_signer_s_encoding(
    strings: tuple[str, ...], sequence: int, uptime: float, mode: int,
    topics: list[tuple[str, bool, float, float, bool]], sec: int, nanosec: int, certificate: bytes, signature: bytes,
) -> None:
    """What the heartbeat node signs (the mapping path) is exactly what the monitor verifies (direct)."""
    msgs = pytest.importorskip("ftrobot_msgs.msg")
    message = msgs.Heartbeat(
        format_version=1, identity_number=strings[0], robot_name=strings[1], department=strings[2],
        boot_id=strings[3], sequence=sequence, uptime=uptime, safety_mode=mode, safety_mode_name=strings[4],
        watched_topics=[msgs.TopicHealth(topic=t, ever_received=e, age=a, max_age=m, healthy=h)
                        for t, e, a, m, h in topics],
        software_digest=strings[5], config_digest=strings[6], guardian_on_duty=strings[0][::-1],
        log_checkpoint_sequence=sequence // 3, log_segment_id=strings[3][::-1], log_chain_head=strings[5][::-1],
        log_checkpoint_signature=signature, certificate=certificate, signature=signature,
    )
    message.header.stamp.sec, message.header.stamp.nanosec, message.header.frame_id = sec, nanosec, strings[6]
    message.log_checkpoint_stamp.sec = sec
    direct = message_canonical_bytes(HEARTBEAT_DOMAIN, message)
    assert direct == canonical_bytes(HEARTBEAT_DOMAIN, message_fields(message))
    signed = sign_fields(KEY, HEARTBEAT_DOMAIN, message_fields(message))
    PUB.verify(signed, direct)
