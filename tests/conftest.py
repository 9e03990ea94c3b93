"""Test session set-up: discovery stays on this machine, and this session gets a ROS domain of its own.

The domain id is reserved with an exclusive lock file for the whole session, so two test sessions
(or a test session and the demo) on one machine never see each other's nodes.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)

_DOMAIN_LOCK: IO[str] | None = None


def _reserve_domain_id() -> int:
    global _DOMAIN_LOCK
    lock_dir = Path(tempfile.gettempdir()) / "ftrobot-ros-domains"
    lock_dir.mkdir(exist_ok=True)
    start = os.getpid() % 100
    for offset in range(100):
        domain = 1 + (start + offset) % 100  # 1..100: fits the default port ranges
        handle = open(lock_dir / f"{domain}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _DOMAIN_LOCK = handle
        return domain
    raise RuntimeError(f"no free ROS domain id among 1..100 (locks in {lock_dir})")


if "FTROBOT_TEST_DOMAIN_ID" not in os.environ:
    os.environ["FTROBOT_TEST_DOMAIN_ID"] = str(_reserve_domain_id())
os.environ["ROS_DOMAIN_ID"] = os.environ["FTROBOT_TEST_DOMAIN_ID"]

pytest_plugins = ["ros_fixtures"]
