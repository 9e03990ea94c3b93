"""Namespace and 'topic:package/msg/Type' parsing: valid input accepted, anything else a clear error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.ros.message_types import (
    MessageTypeError,
    import_message_type,
    message_type_name,
    split_topic_and_type,
)
from ftrobot_guard.ros.ros_names import NameError_, validate_namespace

tokens = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,6}(_[A-Za-z0-9]{1,4}){0,2}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(tokens, min_size=1, max_size=4), st.booleans())
def test_valid_namespaces_become_absolute(parts: list[str], absolute: bool) -> None:
    text = ("/" if absolute else "") + "/".join(parts)
    assert validate_namespace(text) == "/" + "/".join(parts)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30))
def test_any_text_is_a_namespace_or_a_clear_error(text: str) -> None:
    try:
        result = validate_namespace(text)
    except NameError_ as exc:
        assert repr(text) in str(exc) or "must not end" in str(exc)
    else:
        assert result.startswith("/")
        assert result == "/" or all(p and p[0].isascii() and p[0].isalpha() and "__" not in p for p in result.split("/")[1:])


@pytest.mark.parametrize("bad", ["robot\n", "/9robot", "robot//x", "robot/", "ro bot", "robot__1", "/a/-b", "rob\u00f6t"])
def test_bad_namespaces(bad: str) -> None:
    with pytest.raises(NameError_):
        validate_namespace(bad)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_a_topic_type_pair_or_a_clear_error(text: str) -> None:
    try:
        topic, type_name = split_topic_and_type(text)
    except MessageTypeError as exc:
        assert repr(text) in str(exc)
    else:
        assert topic and f"{topic}:{type_name}" == text


def test_topic_type_pairs_and_imports() -> None:
    assert split_topic_and_type("guard/alive:std_msgs/msg/Header") == ("guard/alive", "std_msgs/msg/Header")
    cls = import_message_type("sensor_msgs/msg/JointState")
    assert message_type_name(cls) == "sensor_msgs/msg/JointState"
    for bad in ("joint_states", "joint_states:JointState", ":std_msgs/msg/Header", "a:std_msgs/msg/header"):
        with pytest.raises(MessageTypeError):
            split_topic_and_type(bad)
    for missing, fragment in (("no_such_pkg/msg/X", "not installed"), ("std_msgs/msg/Nope", "has no type")):
        with pytest.raises(MessageTypeError, match=fragment):
            import_message_type(missing)
