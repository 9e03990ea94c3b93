"""The params files among a process's ROS arguments (ros/ros_arguments.py): rcl's grammar, and per node."""

from __future__ import annotations

from pathlib import Path

import pytest
import rclpy
from hypothesis import given, settings
from hypothesis import strategies as st
from rclpy.context import Context

from ftrobot_guard.ros.ros_arguments import (
    RosArgumentsError,
    context_arguments,
    init_context,
    node_params_files,
    params_files,
)

paths = st.from_regex(r"/[a-z0-9_./]{1,30}\.yaml", fullmatch=True)
user_args = st.sampled_from(["--params-file", "-r", "--", "x.yaml", "--verbose", "-p", "foo:=1"])
# (flag, value) pairs rcl accepts inside a --ros-args section, besides --params-file
other_ros_flags = st.one_of(
    st.tuples(st.sampled_from(["-r", "--remap"]), st.sampled_from(["__ns:=/x", "__node:=n", "a:=b", "--params-file"])),
    st.tuples(st.sampled_from(["-p", "--param"]), st.sampled_from(["use_sim_time:=true", "--params-file"])),
    st.tuples(st.sampled_from(["--log-level", "-e", "--enclave", "--log-config-file"]), st.just("--params-file")),
    st.tuples(st.sampled_from(["--disable-rosout-logs", "--enable-stdout-logs"]), st.none()),
)


@st.composite
def command_lines(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """A command line of user arguments and ROS sections, and the params files rcl would read from it."""
    argv = ["prog"]
    expected: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        argv += draw(st.lists(user_args, max_size=3).filter(lambda a: "--ros-args" not in a))
        argv.append("--ros-args")
        for _ in range(draw(st.integers(0, 5))):
            if draw(st.booleans()):
                path = draw(paths)
                argv += ["--params-file", path]
                expected.append(path)
            else:
                flag, value = draw(other_ros_flags)
                argv += [flag] if value is None else [flag, value]
        argv.append("--")
    if argv[-1] == "--" and draw(st.booleans()):
        argv.pop()  # a last section may run to the end
    return argv, expected


@settings(max_examples=300, deadline=None)
@given(command_lines())
def test_params_files_are_exactly_those_in_ros_sections_in_order(case: tuple[list[str], list[str]]) -> None:
    argv, expected = case
    assert params_files(argv) == expected


def test_launch_ros_command_line() -> None:
    argv = ["/opt/ros/lib/ftrobot_guard/heartbeat", "--ros-args", "-r", "__node:=heartbeat", "-r", "__ns:=/r1",
            "--params-file", "/etc/ftrobot/robot.yaml", "--params-file", "/etc/ftrobot/recorder.yaml"]
    assert params_files(argv) == ["/etc/ftrobot/robot.yaml", "/etc/ftrobot/recorder.yaml"]


def test_params_file_outside_a_ros_section_is_a_user_argument() -> None:
    assert params_files(["prog", "--params-file", "user.yaml", "--ros-args", "--", "--params-file", "u2.yaml"]) == []


def test_a_flag_without_its_value_is_refused() -> None:
    with pytest.raises(RosArgumentsError, match="--params-file"):
        params_files(["prog", "--ros-args", "--params-file"])


def test_a_node_gets_the_process_files_then_its_own(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for path in (first, second):
        path.write_text("/**:\n  ros__parameters: {}\n", encoding="utf-8")
    argv = ["prog", "--ros-args", "--params-file", str(first), "--", "user"]
    context = Context()
    init_context(context, argv)
    try:
        assert context_arguments(context) == tuple(argv)
        assert node_params_files(context, {}) == [str(first)]
        own = {"cli_args": ["--ros-args", "--params-file", str(second)]}
        assert node_params_files(context, own) == [str(first), str(second)]
        assert node_params_files(context, {**own, "use_global_arguments": False}) == [str(second)]
    finally:
        rclpy.shutdown(context=context)


def test_a_context_initialised_elsewhere_has_no_known_arguments(ros_context: Context) -> None:
    assert context_arguments(ros_context) == ()
    assert node_params_files(ros_context, {}) == []
