"""Test session set-up: discovery stays on this machine, and this session gets a ROS domain of its own.

The domain id is reserved with an exclusive lock file for the whole session, so two test sessions
(or a test session and the demo) on one machine never see each other's nodes.

Plugins: ``ros_fixtures`` (the one ROS harness), ``clause_traceability`` (clause markers, checked against
docs/clauses.yaml, and ``--clause-results`` for ``make compliance``) and pytest's ``pytester``. The
repository's tools/ directory is importable, so tests and the plugin use tools/compliance_report.py.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings

sys.path.append(str(Path(__file__).resolve().parents[1] / "tools"))

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)

_DOMAIN_LOCKS: list[int] = []  # the locked file's descriptor, held open (and locked) for the whole session


def _reserve_domain_id() -> int:
    lock_dir = Path(tempfile.gettempdir()) / "ftrobot-ros-domains"
    lock_dir.mkdir(exist_ok=True)
    start = os.getpid() % 100
    for offset in range(100):
        domain = 1 + (start + offset) % 100  # 1..100: fits the default port ranges
        descriptor = os.open(lock_dir / f"{domain}.lock", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            continue
        _DOMAIN_LOCKS.append(descriptor)
        return domain
    raise RuntimeError(f"no free ROS domain id among 1..100 (locks in {lock_dir})")


if "FTROBOT_TEST_DOMAIN_ID" not in os.environ:
    os.environ["FTROBOT_TEST_DOMAIN_ID"] = str(_reserve_domain_id())
os.environ["ROS_DOMAIN_ID"] = os.environ["FTROBOT_TEST_DOMAIN_ID"]

pytest_plugins = ["ros_fixtures", "guard_harness", "clause_traceability", "pytester"]

# Property tests assert behaviour, never wall-clock time (bench/ measures that): hypothesis's default 200 ms
# deadline per example failed a codec test on a loaded 2-core machine (one 0.4 s example, 0.26 ms on rerun).
settings.register_profile("ftrobot", deadline=None)
settings.load_profile("ftrobot")


# A test module that touches nothing of ROS (no rclpy, no ftrobot_msgs, no nodes, no child processes) runs
# the same on every ROS distribution: it is marked `distro_independent`, and CI's second distribution leg
# deselects it (`-m "not distro_independent"`, see .ci/run); `make test` runs everything.
_ROS_WORDS = ("rclpy", "ftrobot_msgs", "ros_fixtures", "guard_harness", "ftrobot_guard.nodes", "ftrobot_guard.ros",
              "ftrobot_guard.cli", "subprocess", "pytester", "ros_context", "spinner")
_DISTRO_INDEPENDENT: dict[str, bool] = {}


def _distro_independent(path: Path) -> bool:
    key = str(path)
    if key not in _DISTRO_INDEPENDENT:
        text = path.read_text(encoding="utf-8")
        _DISTRO_INDEPENDENT[key] = not any(word in text for word in _ROS_WORDS)
    return _DISTRO_INDEPENDENT[key]


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "distro_independent: the test touches no ROS; one distribution runs it")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    import pytest

    for item in items:
        if item.path.suffix == ".py" and _distro_independent(item.path):
            item.add_marker(pytest.mark.distro_independent)
