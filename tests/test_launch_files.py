"""The launch files, read as source (launch_ros is not installable here), and a node started as launch_ros starts it.

- Each launch file starts exactly the nodes of its `ftrobot up` stack (ros/stacks.py LAUNCH_FILES),
  with the same default params files in the same order (so the heartbeat's config digest agrees).
- No parameter value in a launch file is a list: launch_ros joins a list of substitutions into one
  string, which a STRING_ARRAY parameter refuses at start.
- A heartbeat started with launch_ros's arguments (``--ros-args -r __node:=… -r __ns:=… --params-file
  A --params-file B``) reports the digest of exactly A and B, stops cleanly on SIGINT, and its
  batched intake does not share its name.
"""

from __future__ import annotations

import ast
import configparser
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from ftrobot_msgs.msg import Heartbeat
from rclpy.context import Context
from rclpy.node import Node

from credentials import make_fleet, write_heartbeat_params
from ftrobot_guard.ros.stacks import DEFAULT_PARAMS, LAUNCH_FILES, STACKS
from ftrobot_guard.status.software_digest import files_digest
from ros_fixtures import SpinningExecutor, wait_until

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_DIR = ROOT / "launch"
PACKAGE = "ftrobot_guard"


class LaunchSource:
    """A launch file's AST with its simple name assignments, so ``parameters=parameters`` can be followed."""

    def __init__(self, text: str) -> None:
        self.tree = ast.parse(text)
        self.names: dict[str, ast.expr] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.names[node.targets[0].id] = node.value

    def resolve(self, expr: ast.expr) -> ast.expr:
        seen: set[str] = set()
        while isinstance(expr, ast.Name) and expr.id in self.names and expr.id not in seen:
            seen.add(expr.id)
            expr = self.names[expr.id]
        return expr

    def calls(self, function: str) -> list[ast.Call]:
        return [
            call for call in ast.walk(self.tree)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == function
        ]

    def keywords(self, call: ast.Call) -> dict[str, ast.expr]:
        found: dict[str, ast.expr] = {}
        for keyword in call.keywords:
            if keyword.arg is not None:
                found[keyword.arg] = keyword.value
            else:  # **common
                expanded = self.resolve(keyword.value)
                if isinstance(expanded, ast.Dict):
                    for key, value in zip(expanded.keys, expanded.values, strict=True):
                        if isinstance(key, ast.Constant) and isinstance(key.value, str):
                            found[key.value] = value
        return found

    def package_nodes(self) -> list[ast.Call]:
        result = []
        for call in self.calls("Node"):
            package = self.resolve(self.keywords(call)["package"])
            if isinstance(package, ast.Constant) and package.value == PACKAGE:
                result.append(call)
        return result

    def launched(self) -> set[tuple[str, str]]:
        found = set()
        for call in self.package_nodes():
            keywords = self.keywords(call)
            executable, name = self.resolve(keywords["executable"]), self.resolve(keywords["name"])
            assert isinstance(executable, ast.Constant) and isinstance(name, ast.Constant)
            found.add((executable.value, name.value))
        return found

    def default_config_file(self, argument: str) -> str:
        """'robot.yaml' for DeclareLaunchArgument(argument, default_value=PathJoinSubstitution([..., 'config',
        'robot.yaml']))."""
        for call in self.calls("DeclareLaunchArgument"):
            first = call.args[0] if call.args else None
            if isinstance(first, ast.Constant) and first.value == argument:
                default = self.resolve(self.keywords(call)["default_value"])
                assert isinstance(default, ast.Call) and isinstance(default.func, ast.Name)
                assert default.func.id == "PathJoinSubstitution"
                parts = default.args[0]
                assert isinstance(parts, ast.List)
                package, *path = parts.elts
                assert ast.unparse(package) == f"FindPackageShare({PACKAGE!r})"
                constants = [p.value for p in path if isinstance(p, ast.Constant)]
                assert len(constants) == 2 and constants[0] == "config", ast.unparse(default)
                return str(constants[1])
        raise AssertionError(f"no DeclareLaunchArgument {argument!r}")

    def params_files_of(self, call: ast.Call) -> tuple[str, ...]:
        """The default config file of each params-file argument in a Node's ``parameters``, in order."""
        parameters = self.resolve(self.keywords(call)["parameters"])
        assert isinstance(parameters, ast.List)
        files = []
        for element in parameters.elts:
            item = self.resolve(element)
            assert isinstance(item, ast.Call) and ast.unparse(item.func) == "LaunchConfiguration", ast.unparse(item)
            argument = item.args[0]
            assert isinstance(argument, ast.Constant)
            files.append(self.default_config_file(str(argument.value)))
        return tuple(files)

    def list_valued_parameters(self) -> list[str]:
        """Every list (or tuple, or comprehension) given as a parameter value to any Node, as source text."""
        found = []
        for call in self.calls("Node"):
            parameters = self.keywords(call).get("parameters")
            if parameters is None:
                continue
            parameters = self.resolve(parameters)
            items = parameters.elts if isinstance(parameters, (ast.List, ast.Tuple)) else [parameters]
            for element in items:
                item = self.resolve(element)
                if not isinstance(item, ast.Dict):
                    continue
                for key, given in zip(item.keys, item.values, strict=True):
                    value = self.resolve(given)
                    if isinstance(value, (ast.List, ast.Tuple, ast.ListComp, ast.Set)):
                        found.append(f"{ast.unparse(key) if key else '**'}: {ast.unparse(value)}")
        return found


def _source(name: str) -> LaunchSource:
    return LaunchSource((LAUNCH_DIR / name).read_text(encoding="utf-8"))


def _console_scripts() -> dict[str, str]:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    scripts = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " = ftrobot_guard." in node.value:
            name, target = node.value.split(" = ")
            scripts[name] = target
    return scripts


@pytest.mark.parametrize("stack, launch_file", sorted(LAUNCH_FILES.items()))
def test_launch_file_matches_stack(stack: str, launch_file: str) -> None:
    source = _source(launch_file)
    scripts = _console_scripts()
    expected = set()
    for spec in STACKS[stack]:
        executable = next(name for name, target in scripts.items() if target == f"{spec.module}:main")
        expected.add((executable, spec.node_name))
    assert source.launched() == expected
    for call in source.package_nodes():
        assert source.params_files_of(call) == DEFAULT_PARAMS[stack], ast.unparse(call)


def test_every_launch_file_starting_our_nodes_is_a_stack() -> None:
    ours = {path.name for path in LAUNCH_DIR.glob("*.launch.py") if _source(path.name).package_nodes()}
    assert ours == set(LAUNCH_FILES.values())
    for stack in LAUNCH_FILES:
        assert stack in STACKS and stack in DEFAULT_PARAMS
    for config in {name for files in DEFAULT_PARAMS.values() for name in files}:
        assert (ROOT / "config" / config).is_file(), config


@pytest.mark.parametrize("launch_file", sorted(p.name for p in LAUNCH_DIR.glob("*.launch.py")))
def test_no_parameter_value_is_a_list(launch_file: str) -> None:
    assert _source(launch_file).list_valued_parameters() == []


def test_the_list_check_finds_the_pattern_launch_ros_turns_into_one_string() -> None:
    broken = '''
def generate_launch_description():
    params_file = LaunchConfiguration("params_file")
    extra = LaunchConfiguration("extra")
    config_files = {"config_files": [params_file, extra]}
    parameters = [params_file, config_files]
    return LaunchDescription([Node(package="ftrobot_guard", executable="heartbeat", name="heartbeat",
                                   parameters=parameters)])
'''
    assert LaunchSource(broken).list_valued_parameters() == ["'config_files': [params_file, extra]"]


def test_launch_files_install_with_the_package() -> None:
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert '(f"share/{PACKAGE}/launch", glob("launch/*.launch.py"))' in setup
    assert '(f"share/{PACKAGE}/config", glob("config/*.yaml"))' in setup


def test_executables_install_where_ros2_run_finds_them() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["install"]["install_scripts"] == "$base/lib/ftrobot_guard"
    assert config["develop"]["script_dir"] == "$base/lib/ftrobot_guard"


@pytest.mark.clause("7.6")
def test_heartbeat_started_as_launch_ros_starts_it_digests_exactly_its_params_files(
    tmp_path: Path, ros_context: Context, spinner: SpinningExecutor
) -> None:
    fleet = make_fleet(tmp_path)
    robot = write_heartbeat_params(
        tmp_path / "robot.yaml", fleet, rate_hz=10.0, watched="joint_states:sensor_msgs/msg/JointState"
    )
    recorder = tmp_path / "recorder.yaml"
    recorder.write_text('/**/recorder:\n  ros__parameters:\n    log_directory: "/tmp/nowhere"\n', encoding="utf-8")
    probe = spinner.add(Node("launch_probe", context=ros_context))
    beats: list[Heartbeat] = []
    lock = threading.Lock()

    def on_beat(msg: Heartbeat) -> None:
        with lock:
            beats.append(msg)

    probe.create_subscription(Heartbeat, "/launched/heartbeat", on_beat, 10)
    # What launch_ros's Node action runs for name="heartbeat", namespace="/launched", parameters=[robot, recorder].
    command = [
        sys.executable, "-c", "from ftrobot_guard.nodes.heartbeat_node import main; main()",
        "--ros-args", "-r", "__node:=heartbeat", "-r", "__ns:=/launched",
        "--params-file", str(robot), "--params-file", str(recorder),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(beats) >= 3 or process.poll() is not None, 30.0, "three heartbeats from /launched")
        assert process.poll() is None, process.communicate()
        with lock:
            digests = {beat.config_digest for beat in beats}
            topics = [health.topic for health in beats[-1].watched_topics]
        assert digests == {files_digest([robot, recorder])}
        assert digests != {files_digest([robot])}
        assert topics == ["/launched/joint_states"]
        wait_until(lambda: {("heartbeat", "/launched"), ("heartbeat_intake", "/launched")}
                   <= set(probe.get_node_names_and_namespaces()), 10.0, "both node names in the ROS graph")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    for line in ("never retrieved", "Destroyable", "already registered", "Traceback", "never awaited"):
        assert line not in out + err, err
