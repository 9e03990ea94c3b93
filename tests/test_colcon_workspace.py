"""A ROS 2 workspace holding this repository builds both packages with colcon (README: real robots).

colcon stops crawling at a package's directory, so the nested interface package is named with a
second base path: ``colcon build --base-paths src src/ftrobot_guard/src``. The CMake include that
fixes the PyPI wheels' include directories is only needed for this PyPI-based ROS.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _copy_repo(target: Path) -> None:
    ignore = shutil.ignore_patterns(".venv*", "build", "install", "log", "__pycache__", ".git", "demo-output", "*.egg-info")
    shutil.copytree(ROOT, target, ignore=ignore)


def test_colcon_builds_both_packages(tmp_path: Path) -> None:
    prefix = Path(sys.prefix)
    colcon = prefix / "bin" / "colcon"
    workspace = tmp_path / "ws"
    _copy_repo(workspace / "src" / "ftrobot_guard")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "_ROS_WHEELS_BOOTSTRAP_COMPLETE")}
    env["PATH"] = f"{prefix / 'bin'}:{env.get('PATH', '')}"
    env["AMENT_PREFIX_PATH"] = str(prefix)

    listed = subprocess.run([str(colcon), "list", "--base-paths", "src", "src/ftrobot_guard/src"], cwd=workspace,
                            env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split("\t")[0] for line in listed.stdout.splitlines()) == ["ftrobot_guard", "ftrobot_msgs"]

    build = subprocess.run(
        [str(colcon), "build", "--base-paths", "src", "src/ftrobot_guard/src", "--cmake-args",
         f"-DCMAKE_PREFIX_PATH={prefix}", f"-DPython3_EXECUTABLE={prefix / 'bin' / 'python'}", "-DBUILD_TESTING=OFF",
         f"-DCMAKE_PROJECT_INCLUDE={ROOT / 'tools' / 'pypi_ros_python_includes.cmake'}"],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=900,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    install = workspace / "install"
    for executable in ("heartbeat", "department_monitor", "recorder", "humanoid_sim", "ftrobot"):
        assert (install / "ftrobot_guard" / "lib" / "ftrobot_guard" / executable).is_file()
    for shared in ("launch/robot.launch.py", "launch/department.launch.py", "launch/sim.launch.py", "config/robot.yaml",
                   "package.xml"):
        assert (install / "ftrobot_guard" / "share" / "ftrobot_guard" / shared).is_file()
    assert (install / "ftrobot_guard" / "share" / "ament_index" / "resource_index" / "packages" / "ftrobot_guard").is_file()
    msgs_py = install / "ftrobot_msgs" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    guard_py = install / "ftrobot_guard" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    check = subprocess.run(
        [sys.executable, "-c", "import ftrobot_guard, ftrobot_msgs.msg as m; print(ftrobot_guard.__file__, m.Heartbeat.FORMAT_VERSION)"],
        env={**os.environ, "PYTHONPATH": f"{guard_py}:{msgs_py}",
             "LD_LIBRARY_PATH": f"{install / 'ftrobot_msgs' / 'lib'}:{os.environ.get('LD_LIBRARY_PATH', '')}"},
        capture_output=True, text=True, timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert str(guard_py) in check.stdout and check.stdout.strip().endswith(" 1")
