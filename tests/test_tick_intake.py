"""safety/tick_intake.py: what the guard takes from its sensors at each control tick (pure, no rclpy)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftrobot_guard.safety.tick_intake import DEFAULT_CONTROL_RATE_HZ, TickIntake

TOPICS = ("joint_states", "imu", "odom", "actuator_temperatures", "battery")


def test_the_newest_reading_of_each_topic_is_taken_and_of_joint_states_the_earlier_ones_too() -> None:
    intake: TickIntake[str] = TickIntake()
    for reading in ("js1", "js2", "js3"):
        intake.keep("joint_states", reading)
    intake.keep("imu", "imu1")
    intake.keep("imu", "imu2")
    earlier, newest = intake.take()
    assert earlier == ["js1", "js2"]                       # oldest first; imu1 is simply replaced
    assert newest == {"joint_states": "js3", "imu": "imu2"}


def test_a_take_empties_the_intake_so_a_reading_is_handed_over_once() -> None:
    intake: TickIntake[int] = TickIntake()
    intake.keep("joint_states", 1)
    intake.keep("joint_states", 2)
    assert intake.take() == ([1], {"joint_states": 2})
    assert intake.take() == ([], {})
    intake.keep("joint_states", 3)
    assert intake.take() == ([], {"joint_states": 3})       # 2 was handed over as the newest: not again


def test_topics_come_in_the_order_they_first_arrived() -> None:
    intake: TickIntake[int] = TickIntake()
    intake.keep("odom", 1)
    intake.keep("joint_states", 2)
    intake.keep("odom", 3)
    assert list(intake.take()[1]) == ["odom", "joint_states"]


def test_the_earlier_readings_are_bounded_and_the_oldest_go_first() -> None:
    intake: TickIntake[int] = TickIntake(history_limit=3)
    for reading in range(10):
        intake.keep("joint_states", reading)
    assert intake.take() == ([6, 7, 8], {"joint_states": 9})
    none_kept: TickIntake[int] = TickIntake(history_limit=0)
    for reading in range(4):
        none_kept.keep("joint_states", reading)
    assert none_kept.take() == ([], {"joint_states": 3})


def test_a_negative_history_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="history_limit must be >= 0"):
        TickIntake(history_limit=-1)


def test_the_default_control_rate_is_the_one_the_robot_config_sets() -> None:
    from pathlib import Path

    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "robot.yaml").read_text(encoding="utf-8"))
    assert config["/**/guard"]["ros__parameters"]["control_rate_hz"] == DEFAULT_CONTROL_RATE_HZ


@given(st.lists(st.tuples(st.sampled_from(TOPICS), st.integers()), max_size=60), st.integers(0, 20))
def test_any_arrivals_give_the_newest_per_topic_and_the_earlier_joint_states(
        arrivals: list[tuple[str, int]], limit: int) -> None:
    intake: TickIntake[int] = TickIntake(history_limit=limit)
    for topic, reading in arrivals:
        intake.keep(topic, reading)
    earlier, newest = intake.take()
    expected_newest: dict[str, int] = {}
    for topic, reading in arrivals:
        expected_newest[topic] = reading
    assert newest == expected_newest
    joint_states = [reading for topic, reading in arrivals if topic == "joint_states"]
    expected_earlier = joint_states[:-1][-limit:] if limit else []
    assert earlier == expected_earlier
    assert intake.take() == ([], {})
