"""The launch files (which cannot run here: no launch_ros) start exactly the nodes `ftrobot up` starts."""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

import pytest

from ftrobot_guard.node_stacks import STACKS

ROOT = Path(__file__).resolve().parents[1]


def _launched_nodes(path: Path) -> set[tuple[str, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node":
            keywords = {k.arg: k.value for k in call.keywords if k.arg}
            package = keywords["package"]
            assert isinstance(package, ast.Constant) and package.value == "ftrobot_guard"
            executable, name = keywords["executable"], keywords["name"]
            assert isinstance(executable, ast.Constant) and isinstance(name, ast.Constant)
            found.add((executable.value, name.value))
    return found


def _console_scripts() -> dict[str, str]:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    scripts = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " = ftrobot_guard." in node.value:
            name, target = node.value.split(" = ")
            scripts[name] = target
    return scripts


@pytest.mark.parametrize("launch_file, stack", [("robot.launch.py", "robot"), ("department.launch.py", "department")])
def test_launch_file_matches_stack(launch_file: str, stack: str) -> None:
    launched = _launched_nodes(ROOT / "launch" / launch_file)
    scripts = _console_scripts()
    expected = set()
    for spec in STACKS[stack]:
        executable = next(name for name, target in scripts.items() if target == f"{spec.module}:main")
        expected.add((executable, spec.node_name))
    assert launched == expected


def test_executables_install_where_ros2_run_finds_them() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["install"]["install_scripts"] == "$base/lib/ftrobot_guard"
    assert config["develop"]["script_dir"] == "$base/lib/ftrobot_guard"
