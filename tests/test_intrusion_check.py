"""Intrusion check: only the guard publishes on hw/*, only allowlisted nodes on guard/in/*; the allowlist
parameter is parsed strictly (hypothesis for the parser and the raise/clear edges)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.safety.intrusion_check import AllowlistError, IntrusionCheck, Publisher, parse_allowlist
from ftrobot_guard.safety.response_policy import Severity

NS = "/futian/robot01"
GUARD = f"{NS}/ftrobot_guard"
ARM = f"{NS}/arm_controller"
HW = f"{NS}/hw/joint_command"
JOINT_IN = f"{NS}/guard/in/joint_command"


def pub(fqn: str) -> Publisher:
    namespace, _, name = fqn.rpartition("/")
    return Publisher(name, namespace or "/")


def make(allowlist: dict[str, tuple[str, ...]] | None = None) -> IntrusionCheck:
    return IntrusionCheck([GUARD], allowlist if allowlist is not None else {"guard/in/joint_command": (ARM,)},
                          namespace=NS)


def test_publisher_fully_qualified_names() -> None:
    assert Publisher("ftrobot_guard", "/futian/robot01").fqn == GUARD
    assert Publisher("talker", "/").fqn == "/talker"
    assert Publisher("talker", "/ns/").fqn == "/ns/talker"


def test_only_the_guard_may_drive_the_hardware() -> None:
    check = make()
    assert check.publishers(1.0, HW, [pub(GUARD)]) == []
    rogue = pub(f"{NS}/rogue_controller")
    raised = check.publishers(2.0, HW, [pub(GUARD), rogue, rogue])
    assert [(r.kind, r.subject, r.severity, r.active) for r in raised] == [
        ("rogue_hw_publisher", f"{NS}/rogue_controller -> hw/joint_command", Severity.ERROR, True)]
    assert raised[0].detector == "intrusion" and raised[0].time == 2.0
    assert "only the guard" in raised[0].description
    assert check.publishers(3.0, HW, [rogue, pub(GUARD)]) == []            # still there: no repeat
    assert [r.subject for r in check.active()] == [f"{NS}/rogue_controller -> hw/joint_command"]
    cleared = check.publishers(4.0, HW, [pub(GUARD)])
    assert [(r.kind, r.active, r.severity) for r in cleared] == [("rogue_hw_publisher", False, Severity.ERROR)]
    assert check.active() == []


def test_every_hw_topic_counts_and_subjects_name_node_and_topic() -> None:
    check = make()
    rogue = pub(f"{NS}/rogue")
    a = check.publishers(0.0, f"{NS}/hw/cmd_vel", [rogue])
    b = check.publishers(0.0, HW, [rogue])
    assert [r.subject for r in a + b] == [f"{NS}/rogue -> hw/cmd_vel", f"{NS}/rogue -> hw/joint_command"]


def test_the_command_gate_inputs_take_allowlisted_nodes_only() -> None:
    check = make({"guard/in/joint_command": (ARM, f"{NS}/planner_*"), "guard/in/cmd_vel": ("/nav/*",)})
    assert check.publishers(0.0, JOINT_IN, [pub(ARM), pub(f"{NS}/planner_7")]) == []
    assert check.publishers(0.0, f"{NS}/guard/in/cmd_vel", [pub("/nav/controller_server")]) == []
    raised = check.publishers(1.0, JOINT_IN, [pub(ARM), pub(f"{NS}/teleop")])
    assert [(r.kind, r.subject, r.severity) for r in raised] == [
        ("unauthorised_publisher", f"{NS}/teleop -> guard/in/joint_command", Severity.ERROR)]
    assert ARM in raised[0].description
    # a topic without an allowlist entry admits nobody
    nobody = check.publishers(1.0, f"{NS}/guard/in/task_request", [pub(ARM)])
    assert [r.kind for r in nobody] == ["unauthorised_publisher"] and "nobody" in nobody[0].description
    # the guard itself is not on the gate's allowlist either
    assert [r.kind for r in check.publishers(1.0, f"{NS}/guard/in/cmd_vel", [pub(GUARD)])] == [
        "unauthorised_publisher"]


def test_a_publisher_the_graph_cannot_name_is_reported() -> None:
    check = make({"guard/in/joint_command": (f"{NS}/*",)})
    unknown = Publisher("_NODE_NAME_UNKNOWN_", "_NODE_NAMESPACE_UNKNOWN_")
    assert [r.kind for r in check.publishers(0.0, HW, [unknown])] == ["rogue_hw_publisher"]
    assert [r.kind for r in check.publishers(0.0, JOINT_IN, [unknown])] == ["unauthorised_publisher"]


@pytest.mark.parametrize("topic", ["/other_robot/hw/joint_command", "/hw/joint_command", f"{NS}/joint_states",
                                   f"{NS}/guard/alive", f"{NS}/guard/out/task_request", "hw/joint_command", "",
                                   f"{NS}x/hw/joint_command"])
def test_topics_outside_the_namespace_or_the_guarded_prefixes_are_not_judged(topic: str) -> None:
    assert make().publishers(0.0, topic, [pub("/rogue")]) == []


def test_the_root_namespace() -> None:
    check = IntrusionCheck(["/ftrobot_guard"], {}, namespace="/")
    assert [r.subject for r in check.publishers(0.0, "/hw/joint_command", [pub("/rogue")])] == [
        "/rogue -> hw/joint_command"]


@pytest.mark.parametrize(("guard_nodes", "allowlist", "namespace", "fragment"), [
    ([], {}, NS, "at least one"),
    (["ftrobot_guard"], {}, NS, "not a fully qualified node name"),
    ([GUARD], {}, "futian", "not an absolute ROS namespace"),
    ([GUARD], {"hw/joint_command": (GUARD,)}, NS, "hw/* is reserved to the guard"),
    ([GUARD], {"guard/in/joint_command": ("arm",)}, NS, "not a fully qualified node name or pattern"),
])
def test_the_constructor_refuses_bad_configuration(guard_nodes: list[str], allowlist: dict[str, Any], namespace: str,
                                                   fragment: str) -> None:
    with pytest.raises(AllowlistError) as error:
        IntrusionCheck(guard_nodes, allowlist, namespace=namespace)
    assert fragment in str(error.value)


def test_malformed_publisher_lists_do_not_raise() -> None:
    check = make()
    assert check.publishers(0.0, HW, None) == []  # type: ignore[arg-type]
    reports = check.publishers(0.0, HW, ["not a publisher"])  # type: ignore[list-item]
    assert [r.kind for r in reports] == ["rogue_hw_publisher"] and "unreadable" in reports[0].subject


# -- the allowlist parameter ------------------------------------------------------------------------


def test_allowlist_entries_become_a_mapping() -> None:
    parsed = parse_allowlist([f"guard/in/joint_command={ARM}", "guard/in/joint_command=/futian/*/planner",
                              "guard/in/cmd_vel=/nav/controller_server"])
    assert parsed == {"guard/in/joint_command": (ARM, "/futian/*/planner"),
                      "guard/in/cmd_vel": ("/nav/controller_server",)}
    assert IntrusionCheck.parse_allowlist([]) == {}


@pytest.mark.parametrize(("entries", "fragment"), [
    ("guard/in/joint_command=/a", "expected a list"),
    ([f"guard/in/joint_command {ARM}"], "exactly one '='"),
    ([f"guard/in/joint_command={ARM}={ARM}"], "exactly one '='"),
    ([f"hw/joint_command={GUARD}"], "hw/* is reserved to the guard"),
    ([f"joint_command={ARM}"], "not under guard/in/"),
    ([f"/futian/robot01/guard/in/joint_command={ARM}"], "not a relative ROS topic name"),
    ([f"guard/in/joint command={ARM}"], "not a relative ROS topic name"),
    (["guard/in/joint_command=arm_controller"], "not a fully qualified node name"),
    (["guard/in/joint_command=/ns/arm controller"], "not a fully qualified node name"),
    (["guard/in/joint_command=/ns//arm"], "not a fully qualified node name"),
    (["guard/in/joint_command="], "not a fully qualified node name"),
    ([f"guard/in/joint_command={ARM}", f"guard/in/joint_command={ARM}"], "listed twice"),
    ([f"guard/in/joint_command={ARM}", 7], "allowlist[1]: 7 is not a string"),
    (["guard/in=/a"], "not under guard/in/"),
])
def test_bad_allowlist_entries_are_refused_with_one_line(entries: Any, fragment: str) -> None:
    with pytest.raises(AllowlistError) as error:
        parse_allowlist(entries)
    assert fragment in str(error.value) and "\n" not in str(error.value)


_token = st.builds(str.__add__, st.sampled_from("abcXY_"), st.text("abz09_", max_size=6))
_topic = st.lists(_token, min_size=1, max_size=3).map(lambda parts: "guard/in/" + "/".join(parts))
_node = st.lists(st.one_of(_token, st.just("*")), min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_topic, _node), max_size=12, unique=True))
def test_valid_allowlists_round_trip(pairs: list[tuple[str, str]]) -> None:
    parsed = parse_allowlist([f"{topic}={node}" for topic, node in pairs])
    expected: dict[str, list[str]] = {}
    for topic, node in pairs:
        expected.setdefault(topic, []).append(node)
    assert parsed == {topic: tuple(nodes) for topic, nodes in expected.items()}


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none(),
                          st.builds(lambda t, n, sep: f"{t}{sep}{n}", st.text(max_size=20), st.text(max_size=20),
                                    st.sampled_from(["=", "==", " = ", ""]))), max_size=6))
def test_any_allowlist_parses_or_is_refused_with_one_line(entries: list[Any]) -> None:
    try:
        parsed = parse_allowlist(entries)
    except AllowlistError as error:
        assert "\n" not in str(error) and str(error).startswith("allowlist")
        return
    for topic, nodes in parsed.items():
        assert topic.startswith("guard/in/") and all(node.startswith("/") for node in nodes)


_names = [f"{NS}/guard_x", GUARD, ARM, f"{NS}/rogue", "/other/node", f"{NS}/planner_1"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([HW, JOINT_IN, f"{NS}/hw/cmd_vel"]),
                          st.lists(st.sampled_from(_names), max_size=5)), max_size=30))
def test_intrusion_reports_alternate_and_track_the_graph(calls: list[tuple[str, list[str]]]) -> None:
    check = make({"guard/in/joint_command": (ARM, f"{NS}/planner_*")})
    state: dict[tuple[str, str], bool] = {}
    latest: dict[str, set[str]] = {}
    for k, (topic, nodes) in enumerate(calls):
        for report in check.publishers(float(k), topic, [pub(node) for node in nodes]):
            key = (report.kind, report.subject)
            assert state.get(key, False) != report.active, report
            state[key] = report.active
        relative = topic[len(NS) + 1:]
        allowed = {GUARD} if relative.startswith("hw/") else {ARM, f"{NS}/planner_1"}
        latest[relative] = {f"{node} -> {relative}" for node in nodes if node not in allowed}
    expected: set[str] = set().union(*latest.values())
    assert {r.subject for r in check.active()} == expected
    assert {key[1] for key, active in state.items() if active} == {r.subject for r in check.active()}
