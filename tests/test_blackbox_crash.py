"""Crash suite: kill -9 the writer at random points, and tear the last segment at random byte
offsets after the last fsync (a power cut). Nothing the writer reported durable is lost, nothing
is silently corrupt, and the log continues after recovery.

Default: a few dozen trials. FTROBOT_LONG_TESTS=1: hundreds."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from blackbox_testkit import LogKeys, make_keys, segments
from ftrobot_guard.blackbox.export import ExportOutcome, iter_entries, make_filter
from ftrobot_guard.blackbox.log_writer import LogWriter, WriterPolicy
from ftrobot_guard.blackbox.record_format import Tier
from ftrobot_guard.blackbox.verification import Diagnosis, Severity, verify_log

LONG = os.environ.get("FTROBOT_LONG_TESTS") == "1"
KILL_TRIALS = 200 if LONG else 8
TEAR_TRIALS = 300 if LONG else 30
SRC = Path(__file__).resolve().parents[1] / "src"

CHILD = textwrap.dedent(
    """
    import sys, os
    from pathlib import Path
    from ftrobot_guard.keys import load_private_key, load_public_key
    from ftrobot_guard.blackbox.log_writer import LogWriter, WriterKeys, WriterPolicy
    from ftrobot_guard.blackbox.record_format import Tier
    keydir = Path(sys.argv[2])
    keys = WriterKeys(sys.argv[3], load_private_key(keydir / "robot_ed25519.pem"),
                      (load_public_key(keydir / "auditor_x25519.pub.pem", "x25519"),))
    writer = LogWriter(sys.argv[1], keys, WriterPolicy(fsync_interval_ms=5, checkpoint_every_records=3,
                                                       segment_max_bytes=8192, block_max_bytes=1024))
    writer.open()
    start = int(sys.argv[4])
    i = start
    print("READY", flush=True)
    while True:
        for _ in range(7):
            writer.append_message("/joint_states", "std_msgs/msg/String", f"n={i:09d};".encode() + os.urandom(80),
                                  "G-1", Tier.LONG_TERM)
            i += 1
        writer.flush()
        print("DURABLE", start + writer.stats.entries_durable, flush=True)
    """
)


def _numbers(directory: Path, keys: LogKeys) -> list[int]:
    outcome = ExportOutcome()
    numbers = [int(item.entry.data[2:11]) for item in
               iter_entries(directory, keys.auditor, make_filter(None, None, None), outcome)
               if item.entry.topic == "/joint_states"]
    assert not outcome.problems, outcome.problems
    return numbers


def _no_errors(directory: Path) -> None:
    report = verify_log(directory)
    assert not report.errors, report.render()


def test_kill_9_at_random_points_loses_nothing_durable(tmp_path: Path) -> None:
    keys = make_keys()
    keydir = tmp_path / "keys"
    keys.save(keydir)
    directory = tmp_path / "log"
    rng = random.Random(1234)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    next_number = 0
    for trial in range(KILL_TRIALS):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(directory), str(keydir), keys.robot_id,
                                  str(next_number)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                 text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY", child.stderr.read() if child.stderr else ""
        deadline = time.monotonic() + rng.uniform(0.02, 0.3)
        durable = next_number
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if line.startswith("DURABLE"):
                durable = int(line.split()[1])
        os.kill(child.pid, signal.SIGKILL)
        for line in child.stdout:  # lines already written before the kill
            if line.startswith("DURABLE"):
                durable = int(line.split()[1])
        child.wait()
        child.stdout.close()
        if child.stderr is not None:
            child.stderr.close()
        numbers = _numbers(directory, keys)
        assert numbers == sorted(numbers) and len(numbers) == len(set(numbers)), f"trial {trial}: order/duplicates"
        assert numbers[: durable] == list(range(durable)), f"trial {trial}: lost durable entries"
        next_number = (numbers[-1] + 1) if numbers else 0
        assert next_number >= durable
    # the log continues after the last crash and verifies
    writer = LogWriter(directory, keys.writer_keys())
    outcome = writer.open()
    writer.append_message("/joint_states", "std_msgs/msg/String", f"n={next_number:09d};".encode())
    writer.close()
    assert outcome.tail is not None
    _no_errors(directory)
    assert _numbers(directory, keys)[-1] == next_number


def _tear(path: Path, offset: int, rng: random.Random) -> None:
    data = path.read_bytes()
    mode = rng.choice(["truncate", "zeros", "garbage"])
    if mode == "truncate":
        path.write_bytes(data[:offset])
    else:
        length = rng.randint(1, max(1, len(data) - offset))
        filler = bytes(length) if mode == "zeros" else os.urandom(length)
        path.write_bytes(data[:offset] + filler)


@pytest.mark.parametrize("seed", range(TEAR_TRIALS))
def test_power_cut_tears_after_last_fsync(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    keys = make_keys()
    directory = tmp_path / "log"
    policy = WriterPolicy(checkpoint_every_records=rng.randint(1, 6), segment_max_bytes=1 << 20, block_max_bytes=1024)
    writer = LogWriter(directory, keys.writer_keys(), policy)
    writer.open()
    number = 0
    synced_size = 0
    synced_count = 0
    flushes = rng.randint(3, 12)
    for flush in range(flushes):
        for _ in range(rng.randint(1, 9)):
            writer.append_message("/joint_states", "std_msgs/msg/String",
                                  f"n={number:09d};".encode() + os.urandom(rng.randint(10, 300)), "G-1", Tier.EVENT)
            number += 1
        last = flush == flushes - 1
        writer.flush(sync=not last)
        if not last:
            assert writer.segment_path is not None
            synced_size = writer.segment_path.stat().st_size
            synced_count = writer.stats.entries_durable
    path = writer.segment_path
    assert path is not None
    size = path.stat().st_size
    writer._segment.release()  # type: ignore[union-attr]  # simulate the process vanishing
    writer._release_lock()
    cut = rng.randint(synced_size, size)
    _tear(path, cut, rng)
    # recovery keeps everything synced, reports precisely, and the log continues
    recovered = LogWriter(directory, keys.writer_keys(), policy)
    outcome = recovered.open()
    assert outcome.note is not None and outcome.note.kind in ("TORN_TAIL", "UNCLOSED")
    assert outcome.note.last_valid_sequence >= 1
    recovered.append_message("/joint_states", "std_msgs/msg/String", f"n={number:09d};".encode())
    recovered.close()
    numbers = _numbers(directory, keys)
    assert numbers[:synced_count] == list(range(synced_count))
    assert numbers[-1] == number and numbers[:-1] == list(range(len(numbers) - 1))
    report = verify_log(directory)
    assert not report.errors and not report.warnings, report.render()
    assert Diagnosis.RECOVERED in report.diagnoses(Severity.INFO)


def test_torn_header_is_quarantined(tmp_path: Path) -> None:
    keys = make_keys()
    directory = tmp_path / "log"
    writer = LogWriter(directory, keys.writer_keys())
    writer.open()
    writer.append_message("/a", "std_msgs/msg/String", b"x")
    writer.close()
    last = segments(directory)[-1]
    torn = directory / ("0000000001-" + "ab" * 16 + ".ftbb")
    torn.write_bytes(last.read_bytes()[:40])
    before = verify_log(directory)
    assert Diagnosis.TORN_TAIL in before.diagnoses(Severity.WARNING)
    writer = LogWriter(directory, keys.writer_keys())
    outcome = writer.open()
    writer.close()
    assert outcome.note is not None and outcome.note.kind == "TORN_HEADER"
    assert not torn.exists() and (directory / "quarantine").is_dir()
    assert verify_log(directory).clean
