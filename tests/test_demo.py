"""`make demo` end to end: every narrated step succeeds, and it leaves its pictures and 0600 keys behind."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path


def test_demo_runs_every_step(tmp_path: Path) -> None:
    env = {**os.environ, "FTROBOT_DEMO_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]}
    result = subprocess.run([sys.executable, "-m", "ftrobot_guard.cli.main", "demo", "--out", str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "FAIL" not in result.stdout and "Traceback" not in result.stdout + result.stderr
    assert result.stdout.count("  ok   ") >= 10
    (run_dir,) = tmp_path.glob("run-*")
    pictures = sorted(p.name for p in (run_dir / "pictures").glob("*.png"))
    assert len(pictures) == 6 and all((run_dir / "pictures" / p).stat().st_size > 10_000 for p in pictures)
    for key in (run_dir / "keys").rglob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
