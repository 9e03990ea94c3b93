"""The service agreement and the operating procedures, on real DDS against the simulated G1 (clauses 5.2a,
5.2b): the planner gets only whitelisted tasks, and only inside the signed service hours; outside them no
joint or base motion is forwarded, but a stop still is; REDUCED scales the base to the envelope's reduced
profile; the site geofence bounds base motion. Each site envelope is adapted and signed here as the
department would (``write_signed_envelope``)."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ftrobot_msgs.msg import TaskRequest
from geometry_msgs.msg import Twist
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ftrobot_guard.guardians.guardian_commands import GuardianAction
from ftrobot_guard.ros.qos_profiles import COMMANDS
from ftrobot_guard.safety.dev_envelope import always_open, write_signed_envelope
from guard_harness import (
    COMMITTED_ENVELOPE,
    SIM_INPUT_AGES,
    GuardFiles,
    Guardians,
    GuardStack,
    make_guard_files,
    wait_standing_in_normal,
)
from ros_fixtures import wait_until

pytestmark = pytest.mark.timeout(150)

SMALL_HALL = "[[-0.6, -0.6], [0.6, -0.6], [0.6, 0.6], [-0.6, 0.6]]"  # 0.25 m of clearance at the origin (margin 0.35)


def _site_files(directory: Path, closed_today: bool = False, keep_in: str | None = None) -> GuardFiles:
    """Development credentials and an envelope adapted to the site and signed by the department."""
    files = make_guard_files(directory)
    text = always_open(COMMITTED_ENVELOPE.read_text(encoding="utf-8"))
    if closed_today:  # yesterday, today and tomorrow in the hall's time zone: closed whenever the test runs
        today = dt.datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai")).date()
        dates = ", ".join(f'"{today + dt.timedelta(days=d)}"' for d in (-1, 0, 1))
        text, count = re.subn(r"(?m)^  closed_dates: \[\]$", f"  closed_dates: [{dates}]", text, count=1)
        assert count == 1
    if keep_in is not None:
        text, count = re.subn(r"(?m)^(      polygon: )\[\[-10\.0, -10\.0\].*$", rf"\g<1>{keep_in}", text, count=1)
        assert count == 1
    write_signed_envelope(files.envelope, text, files.department.key, [files.identity_number], open_all_hours=False,
                          input_ages=SIM_INPUT_AGES)
    return files


class Planner:
    """The robot's task planner and base controller: tasks and twists into the guard, what it lets out."""

    def __init__(self, stack: GuardStack) -> None:
        self.stack = stack
        node = stack.observer.node
        self.tasks_out: list[TaskRequest] = []
        self.twists_out: list[Twist] = []
        node.create_subscription(TaskRequest, "guard/out/task_request", self.tasks_out.append, COMMANDS)
        node.create_subscription(Twist, "hw/cmd_vel", self.twists_out.append, COMMANDS)
        self.tasks = node.create_publisher(TaskRequest, "guard/in/task_request", COMMANDS)
        self.twists = node.create_publisher(Twist, "guard/in/cmd_vel", COMMANDS)
        self.joints = node.create_publisher(JointTrajectory, "guard/in/joint_command", COMMANDS)
        wait_until(lambda: all(p.get_subscription_count() > 0 for p in (self.tasks, self.twists, self.joints)), 10.0,
                   "the guard on its input topics")

    def task(self, task_id: str, kind: str) -> None:
        msg = TaskRequest(task_id=task_id, task_kind=kind, requester="test_planner", arguments="{}")
        msg.header.stamp = self.stack.observer.node.get_clock().now().to_msg()
        self.tasks.publish(msg)

    def twist(self, vx: float) -> None:
        msg = Twist()
        msg.linear.x = vx
        self.twists.publish(msg)

    def joint(self, name: str, position: float) -> None:
        msg = JointTrajectory(joint_names=[name], points=[JointTrajectoryPoint(positions=[position])])
        msg.header.stamp = self.stack.observer.node.get_clock().now().to_msg()
        self.joints.publish(msg)

    def forwarded_task_ids(self) -> list[str]:
        return [t.task_id for t in list(self.tasks_out)]

    def refusal(self, kind: str, topic: str, fragment: str) -> Any:
        """Wait for the guard's anomaly ``kind`` on ``topic`` whose description holds ``fragment``."""
        def found() -> Any:
            return next((a for a in self.stack.observer.raised(kind)
                         if a.subject.endswith(topic) and fragment in a.description), None)
        wait_until(lambda: found() is not None, 10.0, f"{kind} on {topic}: {fragment!r}")
        return found()


@pytest.mark.clause("5.2a", "5.3")
def test_the_planner_gets_only_whitelisted_tasks(guard_stack: Callable[..., GuardStack], tmp_path: Path) -> None:
    stack = guard_stack(files=_site_files(tmp_path / "site"))
    wait_standing_in_normal(stack)
    planner = Planner(stack)
    planner.task("t1", "guide_visitor")
    wait_until(lambda: planner.forwarded_task_ids() == ["t1"], 10.0, "the whitelisted task forwarded")
    planner.task("t2", "direct_robot_employee")
    assert "may not direct or design other robot employees" in planner.refusal(
        "task_refused", "guard/in/task_request", "direct_robot_employee").description
    planner.task("t3", "dance")
    planner.refusal("task_refused", "guard/in/task_request", "not in the envelope's task whitelist")
    planner.task("t4", "fetch_form")  # forwarded in order after t2 and t3: they were not
    wait_until(lambda: "t4" in planner.forwarded_task_ids(), 10.0, "the next whitelisted task forwarded")
    assert planner.forwarded_task_ids() == ["t1", "t4"]


@pytest.mark.clause("5.2a")
def test_outside_service_hours_nothing_moves_and_no_task_starts_but_a_stop_passes(
        guard_stack: Callable[..., GuardStack], tmp_path: Path) -> None:
    stack = guard_stack(files=_site_files(tmp_path / "site", closed_today=True))
    wait_standing_in_normal(stack)
    planner = Planner(stack)
    anchor = stack.guard.core.gate.anchor_positions  # type: ignore[union-attr]
    elbow = stack.guard.core.envelope.joints.index["left_elbow_joint"]  # type: ignore[union-attr]
    assert anchor is not None
    planner.joint("left_elbow_joint", float(anchor[elbow]) + 0.001)  # inside the envelope: forwarded when open
    planner.refusal("command_refused", "guard/in/joint_command", "outside service hours")
    planner.task("t1", "guide_visitor")
    planner.refusal("task_refused", "guard/in/task_request", "outside service hours")
    planner.twist(0.1)
    planner.refusal("command_refused", "guard/in/cmd_vel", "outside service hours")
    planner.twist(0.0)  # a stop always passes
    wait_until(lambda: bool(planner.twists_out), 10.0, "the stop forwarded on hw/cmd_vel")
    assert [t.linear.x for t in planner.twists_out] == [0.0]
    assert planner.forwarded_task_ids() == []
    assert not any(m.joint_names == ["left_elbow_joint"] for m in stack.observer.forwarded)


@pytest.mark.clause("5.2b")
def test_reduced_scales_the_base_and_the_geofence_bounds_it(guard_stack: Callable[..., GuardStack],
                                                            tmp_path: Path) -> None:
    stack = guard_stack(files=_site_files(tmp_path / "site", keep_in=SMALL_HALL))
    wait_standing_in_normal(stack)
    planner = Planner(stack)
    planner.twist(0.1)  # 0.05 m in the 0.5 s horizon: inside the hall
    wait_until(lambda: bool(planner.twists_out), 10.0, "a twist inside the geofence forwarded")
    assert planner.twists_out[-1].linear.x == pytest.approx(0.1)
    planner.twist(0.6)  # the NORMAL speed limit, but 0.3 m in the horizon: past the hall's margin
    assert "geofence" in planner.refusal("command_refused", "guard/in/cmd_vel", "geofence").description
    result = Guardians(stack).command(GuardianAction.REDUCE)
    assert result.accepted and result.obeyed, result.detail
    stack.wait_mode("REDUCED", 10.0)
    count = len(planner.twists_out)
    planner.twist(0.2)  # inside NORMAL's 0.6 m/s, above REDUCED's 0.6 x 0.3
    wait_until(lambda: len(planner.twists_out) > count, 10.0, "the twist forwarded in REDUCED")
    envelope = stack.guard.core.envelope
    assert envelope is not None
    reduced = envelope.base.linear_speed.soft * envelope.reduced.speed_scale
    assert reduced == pytest.approx(0.18)
    assert planner.twists_out[-1].linear.x == pytest.approx(reduced)
    planner.refusal("command_clamped", "guard/in/cmd_vel", "clamped to 0.18")
