"""The layering rule of the README: pure concept packages never reach rclpy, directly or through imports.

- ``ros/`` and ``nodes/`` may import rclpy; in ``cli/`` only the node starters may.
- The concept packages (trust, hardware, safety, guardians, incidents, status, department, blackbox, sim) import neither
  rclpy nor ``ros/``, ``nodes/`` or ``cli/``, at module level or inside a function.
- Importing any pure module in a fresh interpreter loads no rclpy (checked at run time too, so an
  indirect import through another library is caught).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ftrobot_guard

PACKAGE_DIR = Path(ftrobot_guard.__file__).parent
PURE_PACKAGES = ("trust", "hardware", "safety", "guardians", "incidents", "status", "department", "blackbox", "sim")
ROS_PACKAGES = ("ros", "nodes")
CLI_NODE_STARTERS = ("cli/run_commands.py", "cli/demo.py", "cli/demo_guard.py")
FORBIDDEN_IN_PURE = ("rclpy", "ftrobot_guard.ros", "ftrobot_guard.nodes", "ftrobot_guard.cli")


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module an ``import`` or ``from … import`` in the file names (relative ones resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(("ftrobot_guard", *path.relative_to(PACKAGE_DIR).parent.parts))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def _modules_of(subpackage: str) -> list[Path]:
    return sorted((PACKAGE_DIR / subpackage).rglob("*.py"))


def _violations(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE_DIR)}:{line} imports {name}"
        for line, name in _imported_modules(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


def test_every_concept_package_exists_with_a_docstring() -> None:
    for subpackage in (*PURE_PACKAGES, *ROS_PACKAGES, "cli"):
        init = PACKAGE_DIR / subpackage / "__init__.py"
        assert init.is_file(), f"{subpackage}/ has no __init__.py"
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and len(docstring.split()) >= 20, f"{subpackage}/__init__.py needs a paragraph saying what it is"


def test_no_loose_modules_beside_the_concept_packages() -> None:
    loose = sorted(p.name for p in PACKAGE_DIR.glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"modules outside a concept package: {loose}"


@pytest.mark.parametrize("subpackage", PURE_PACKAGES)
def test_pure_packages_import_no_ros(subpackage: str) -> None:
    problems = [v for path in _modules_of(subpackage) for v in _violations(path, FORBIDDEN_IN_PURE)]
    assert problems == []


def test_only_node_starters_import_rclpy_in_the_cli() -> None:
    problems = [
        v
        for path in _modules_of("cli")
        if str(path.relative_to(PACKAGE_DIR)) not in CLI_NODE_STARTERS
        for v in _violations(path, ("rclpy",))
    ]
    assert problems == []


def test_the_static_check_sees_a_lazy_import(tmp_path: Path) -> None:
    """The walker finds imports inside functions, so a lazy ``import rclpy`` cannot hide."""
    probe = PACKAGE_DIR / "safety" / "_layering_probe_tmp.py"
    probe.write_text("def f():\n    from rclpy.node import Node\n    return Node\n")
    try:
        assert _violations(probe, FORBIDDEN_IN_PURE) == ["safety/_layering_probe_tmp.py:2 imports rclpy.node"]
    finally:
        probe.unlink()


def test_importing_pure_modules_loads_no_rclpy() -> None:
    modules = [
        ".".join(("ftrobot_guard", *path.relative_to(PACKAGE_DIR).with_suffix("").parts)).removesuffix(".__init__")
        for subpackage in PURE_PACKAGES
        for path in _modules_of(subpackage)
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m == 'rclpy' or m.startswith('rclpy.'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"rclpy loaded by pure modules: {result.stdout.strip()}"
