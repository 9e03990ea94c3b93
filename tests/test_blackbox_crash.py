"""Crash suite: kill -9 the writer at random points, and tear the last segment at random byte
offsets after the last fsync (a power cut). Nothing the writer reported durable is lost, nothing
is silently corrupt, and the log continues after recovery. Damage a power cut cannot explain (a
flipped byte in a closed segment, valid records after the damage, a loss longer than the fsync
interval) is never "recovered": the file stays as it is and `log verify` reports an ERROR.

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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blackbox_testkit import FakeClock, LogKeys, flip_bit, make_keys, parse, segments, write_log
from ftrobot_guard.blackbox.export import ExportOutcome, iter_entries, make_filter
from ftrobot_guard.blackbox.log_writer import LogWriter, WriterPolicy
from ftrobot_guard.blackbox.power_cut import power_cut_bound_ns
from ftrobot_guard.blackbox.record_format import RecordType, Tier
from ftrobot_guard.blackbox.verification import Diagnosis, Severity, verify_log
from ftrobot_guard.cli.main import main as ftrobot

LONG = os.environ.get("FTROBOT_LONG_TESTS") == "1"
KILL_TRIALS = 200 if LONG else 8
TEAR_TRIALS = 300 if LONG else 30
SRC = Path(__file__).resolve().parents[1] / "src"

CHILD = textwrap.dedent(
    """
    import sys, os
    from pathlib import Path
    from ftrobot_guard.trust.keys import load_private_key, load_public_key
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


@pytest.mark.clause("3.1b")
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
    assert outcome.note.last_valid_sequence >= 1 and not outcome.damage
    recovered.append_message("/joint_states", "std_msgs/msg/String", f"n={number:09d};".encode())
    recovered.close()
    numbers = _numbers(directory, keys)
    assert numbers[:synced_count] == list(range(synced_count))
    assert numbers[-1] == number and numbers[:-1] == list(range(len(numbers) - 1))
    report = verify_log(directory)
    assert not report.errors, report.render()
    assert Diagnosis.RECOVERED in report.diagnoses(Severity.INFO)
    if outcome.note.kind == "TORN_TAIL":  # the set-aside bytes are reported: a warning, never an error or silence
        assert report.diagnoses(Severity.WARNING) == {Diagnosis.QUARANTINED}, report.render()
        assert outcome.note.quarantine_file in report.warnings[0].message
    else:
        assert report.clean, report.render()


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


# --------------------------------------------------------------------------- damage no power cut explains

DAMAGE_POLICY = WriterPolicy(fsync_interval_ms=10, checkpoint_every_records=4, segment_max_bytes=16 * 1024,
                             block_max_bytes=2048)


def _closed_log(directory: Path, keys: LogKeys) -> Path:
    """A log written and closed cleanly; returns its newest segment (ends with a signed CLOSE)."""
    writer = write_log(directory, keys, entries=150, policy=DAMAGE_POLICY, close=False)
    for i in range(150, 160):  # a few more flushes, so the newest segment holds data whatever rotated last
        writer.append_message("/safety_state", "std_msgs/msg/String", f"entry {i:08d} ".encode() + bytes(200))
        if i % 3 == 2:
            writer.flush()
    writer.close()
    newest = segments(directory)[-1]
    _prefix, records, _data = parse(newest)
    assert records[-1].record_type == RecordType.CLOSE and sum(r.record_type == RecordType.DATA for r in records) >= 3
    assert verify_log(directory).clean
    return newest


def _restart(directory: Path, keys: LogKeys):  # type: ignore[no-untyped-def]
    writer = LogWriter(directory, keys.writer_keys(), DAMAGE_POLICY)
    outcome = writer.open()
    writer.append_message("/safety_state", "std_msgs/msg/String", b"entry after restart")
    writer.close()
    return outcome


@pytest.mark.clause("3.1b")
def test_flipped_byte_in_closed_segment_is_left_as_is_and_verify_reports_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The outside-in scenario of issue 7: flip one byte inside the newest closed segment, restart
    the writer, run `ftrobot log verify`."""
    keys = make_keys()
    directory = tmp_path / "log"
    newest = _closed_log(directory, keys)
    _prefix, records, data = parse(newest)
    victim = [r for r in records if r.record_type == RecordType.DATA][1]
    newest.write_bytes(flip_bit(data, victim.offset + 40, 5))  # inside the ciphertext
    damaged = newest.read_bytes()

    outcome = _restart(directory, keys)

    assert newest.read_bytes() == damaged  # nothing cut: its later records and signed CLOSE stay in place
    assert not (directory / "quarantine").exists()
    assert outcome.note is not None and outcome.note.kind == "DAMAGED"
    assert newest.name in outcome.damage and "CLOSE" in outcome.damage
    report = verify_log(directory)
    corrupt = [f for f in report.errors if f.diagnosis is Diagnosis.CORRUPT_RECORD]
    assert corrupt and corrupt[0].segment == newest.name and corrupt[0].offset == victim.offset, report.render()
    assert Diagnosis.RECOVERED in report.diagnoses(Severity.ERROR)
    # what follows the damage, the CLOSE and the entry written after the restart are all still readable
    outcome_export = ExportOutcome()
    bodies = [item.entry.data for item in iter_entries(directory, keys.auditor, make_filter(None, None, None),
                                                       outcome_export)]
    assert bodies[-1] == b"entry after restart" and bodies[-2].startswith(b"entry 00000159 ")
    assert any(f"sequence {victim.sequence}" in problem or str(victim.offset) in problem
               for problem in outcome_export.problems)

    code = ftrobot(["log", "verify", str(directory)])
    out = capsys.readouterr().out
    assert code == 1
    result = out.splitlines()[-1]
    assert result.startswith("result: ") and not result.startswith("result: 0 errors"), out
    assert any(line.startswith("ERROR   CORRUPT_RECORD") and newest.name in line for line in out.splitlines()), out


_FLIP_KEYS = make_keys()


@pytest.mark.clause("3.1b")
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(min_value=0.0, max_value=1.0, exclude_max=True), bit=st.integers(0, 7))
def test_any_flip_before_the_close_record_is_damage_not_a_power_cut(
    tmp_path_factory: pytest.TempPathFactory, where: float, bit: int
) -> None:
    directory = tmp_path_factory.mktemp("flip") / "log"
    newest = _closed_log(directory, _FLIP_KEYS)
    prefix, records, data = parse(newest)
    offset = prefix.records_offset + int(where * (records[-1].offset - prefix.records_offset))
    newest.write_bytes(flip_bit(data, offset, bit))
    damaged = newest.read_bytes()
    outcome = _restart(directory, _FLIP_KEYS)
    assert outcome.note is not None and outcome.note.kind == "DAMAGED" and outcome.damage
    assert newest.read_bytes() == damaged and not (directory / "quarantine").exists()
    report = verify_log(directory)
    assert report.errors and report.exit_code == 1, report.render()


@pytest.mark.clause("3.1b")
def test_flip_inside_the_final_close_record_is_set_aside_and_never_reported_ok(tmp_path: Path) -> None:
    """Damage confined to the last record cannot be told from a torn last write: it is set aside
    like a torn tail, and verify says so (a warning), never "OK"."""
    keys = make_keys()
    directory = tmp_path / "log"
    newest = _closed_log(directory, keys)
    _prefix, records, data = parse(newest)
    newest.write_bytes(flip_bit(data, records[-1].offset + 60, 2))
    outcome = _restart(directory, keys)
    assert outcome.note is not None and outcome.note.kind == "TORN_TAIL" and not outcome.damage
    report = verify_log(directory)
    assert not report.clean and Diagnosis.QUARANTINED in report.diagnoses(Severity.WARNING), report.render()


@pytest.mark.clause("3.1b")
def test_loss_longer_than_the_fsync_interval_is_damage(tmp_path: Path) -> None:
    """Records whose headers survive but whose bytes are all damaged, sealed far apart in time: more
    than one fsync interval, so no power cut lost them."""
    keys = make_keys()
    directory = tmp_path / "log"
    step = 2 * power_cut_bound_ns(DAMAGE_POLICY.fsync_interval_ms)
    write_log(directory, keys, entries=40, policy=DAMAGE_POLICY, close=False, clock=FakeClock(step_ns=step))
    newest = segments(directory)[-1]
    _prefix, records, data = parse(newest)
    tail = records[-3:]
    assert tail[-1].time_ns - tail[0].time_ns > power_cut_bound_ns(DAMAGE_POLICY.fsync_interval_ms)
    for record in tail:  # a bit in each payload: headers intact, every CRC wrong
        data = flip_bit(data, record.offset + record.length - 8)
    newest.write_bytes(data)
    (directory / ".lock").unlink()
    outcome = _restart(directory, keys)
    assert outcome.note is not None and outcome.note.kind == "DAMAGED", outcome.messages
    assert "ms apart" in outcome.damage
    assert newest.read_bytes() == data
    assert verify_log(directory).errors


@pytest.mark.clause("3.1b")
def test_legacy_quarantine_holding_a_close_record_is_an_error(tmp_path: Path) -> None:
    """Logs recovered by earlier writers may hold a quarantined 'torn tail' that is really the rest
    of a closed segment: verify reports it as an ERROR, not as bytes set aside by a power cut."""
    keys = make_keys()
    directory = tmp_path / "log"
    newest = _closed_log(directory, keys)
    _prefix, records, data = parse(newest)
    cut = [r for r in records if r.record_type == RecordType.DATA][1].offset
    quarantine = directory / "quarantine"
    quarantine.mkdir()
    (quarantine / f"{newest.name}.torn-{cut}").write_bytes(flip_bit(data, cut + 40)[cut:])
    newest.write_bytes(data[:cut])
    report = verify_log(directory)
    found = [f for f in report.errors if f.diagnosis is Diagnosis.QUARANTINED]
    assert found and "CLOSE" in found[0].message and newest.name == found[0].segment, report.render()
