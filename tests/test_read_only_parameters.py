"""Every node reads its parameters once, at start, so each one refuses `ros2 param set` (read-only).

A second node calls the node's real ``set_parameters`` service, as ``ros2 param set`` does: the
change is refused with rclpy's read-only reason and the value stays what the node started with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, ListParameters, SetParameters
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from blackbox_testkit import make_keys
from credentials import heartbeat_overrides, make_fleet
from ftrobot_guard.nodes.department_monitor_node import DepartmentMonitorNode
from ftrobot_guard.nodes.heartbeat_node import HeartbeatNode
from ftrobot_guard.nodes.humanoid_sim_node import HumanoidSimNode
from ftrobot_guard.nodes.recorder_node import RecorderNode
from ros_fixtures import SpinningExecutor


def _params(values: dict[str, object]) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


def _heartbeat(context: Context, tmp_path: Path) -> Node:
    fleet = make_fleet(tmp_path)
    overrides = heartbeat_overrides(fleet.robot, fleet.department)
    return HeartbeatNode(context=context, parameter_overrides=_params(overrides))


def _recorder(context: Context, tmp_path: Path) -> Node:
    keys = make_keys()
    paths = keys.save(tmp_path / "keys")
    return RecorderNode(context=context, parameter_overrides=_params({
        "log_directory": str(tmp_path / "log"), "identity_number": keys.robot_id,
        "signing_key_file": str(paths["robot_key"]), "auditor_public_key_files": [str(paths["auditor_pub"])],
        "topics": ["events|std_msgs/msg/String|event"], "guardian_on_duty": "G-0042", "guardian_topic": "",
    }))


def _department_monitor(context: Context, tmp_path: Path) -> Node:
    fleet = make_fleet(tmp_path)
    return DepartmentMonitorNode(context=context, parameter_overrides=_params({
        "trusted_ca_files": [str(fleet.department.ca_certificate)],
        "witnessed_heads_file": str(tmp_path / "dept" / "heads.jsonl"),
    }))


def _humanoid_sim(context: Context, _tmp_path: Path) -> Node:
    return HumanoidSimNode(context=context, parameter_overrides=_params({"require_guard_alive": False}))


def _double(value: float) -> ParameterValue:
    return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)


def _string(value: str) -> ParameterValue:
    return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)


NODES: dict[str, tuple[Callable[[Context, Path], Node], str, ParameterValue]] = {
    "heartbeat": (_heartbeat, "rate_hz", _double(5.0)),
    "recorder": (_recorder, "log_directory", _string("/tmp/elsewhere")),
    "department_monitor": (_department_monitor, "heartbeat_period", _double(5.0)),
    "humanoid_sim": (_humanoid_sim, "damping_kd", _double(50.0)),
}


def _call(client_node: Node, service_type: Any, name: str, request: Any) -> Any:
    client = client_node.create_client(service_type, name)
    assert client.wait_for_service(timeout_sec=10.0), f"no service {name}"
    response = client.call(request, timeout_sec=10.0)
    assert response is not None, f"no response from {name}"
    return response


@pytest.mark.parametrize("kind", sorted(NODES))
def test_every_parameter_is_read_only_and_a_set_is_refused(
    kind: str, tmp_path: Path, ros_context: Context, spinner: SpinningExecutor
) -> None:
    factory, name, new_value = NODES[kind]
    node = factory(ros_context, tmp_path)
    try:
        spinner.add(node)
    except BaseException:
        node.destroy_node()
        raise
    before = node.get_parameter(name).value
    client = spinner.add(Node("param_setter", context=ros_context))
    fqn = node.get_fully_qualified_name()

    listed = _call(client, ListParameters, f"{fqn}/list_parameters", ListParameters.Request()).result.names
    ours = [p for p in listed if p != "use_sim_time"]  # rclpy's own, settable by design
    assert name in ours
    described = _call(client, DescribeParameters, f"{fqn}/describe_parameters", DescribeParameters.Request(names=ours))
    assert [d.name for d in described.descriptors if not d.read_only] == []

    result = _call(client, SetParameters, f"{fqn}/set_parameters",
                   SetParameters.Request(parameters=[ParameterMsg(name=name, value=new_value)])).results[0]
    assert not result.successful
    assert "read-only" in result.reason
    assert node.get_parameter(name).value == before
