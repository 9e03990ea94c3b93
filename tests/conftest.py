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

pytest_plugins = ["ros_fixtures", "clause_traceability", "pytester"]
