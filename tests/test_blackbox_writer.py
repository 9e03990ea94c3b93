"""The writer: round trip through export, keys, locking, bad directories, disk full, rotation."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from blackbox_testkit import OTHER_ROBOT_ID, FakeClock, make_keys, parse, segments, write_log
from ftrobot_guard.blackbox.errors import BlackBoxError, KeyMismatchError, LogLockedError, LogWriteError
from ftrobot_guard.blackbox.export import ExportOutcome, iter_entries, make_filter
from ftrobot_guard.blackbox.log_writer import NOTICE_TOPIC, FlushThread, LogWriter, WriterPolicy
from ftrobot_guard.blackbox.record_format import Entry, EntryKind, Tier
from ftrobot_guard.blackbox.verification import verify_log


def _export(directory: Path, key, **kwargs):  # type: ignore[no-untyped-def]
    outcome = ExportOutcome()
    items = list(iter_entries(directory, key, make_filter(**kwargs), outcome))
    return items, outcome


def test_round_trip_preserves_every_entry_in_order(tmp_path: Path) -> None:
    keys = make_keys()
    write_log(tmp_path / "log", keys, entries=250)
    items, outcome = _export(tmp_path / "log", keys.auditor, since_ns=None, until_ns=None, topics=None)
    assert not outcome.problems
    assert [int(i.entry.data[6:14]) for i in items] == list(range(250))
    assert all(i.entry.guardian == "G-0001" for i in items)
    assert {i.entry.tier for i in items} == {Tier.EVENT, Tier.LONG_TERM}


def test_filters_by_topic_and_time(tmp_path: Path) -> None:
    keys = make_keys()
    clock = FakeClock()
    write_log(tmp_path / "log", keys, entries=90, clock=clock)
    items, _ = _export(tmp_path / "log", keys.auditor, since_ns=None, until_ns=None, topics=["safety_state"])
    assert len(items) == 30 and all(i.entry.topic == "/safety_state" for i in items)
    all_items, _ = _export(tmp_path / "log", keys.auditor, since_ns=None, until_ns=None, topics=None)
    middle = all_items[45].entry.time_ns
    later, _ = _export(tmp_path / "log", keys.auditor, since_ns=middle, until_ns=None, topics=None)
    assert len(later) == 45


@pytest.mark.clause("7.3")
def test_robot_copy_opens_and_wrong_key_is_refused(tmp_path: Path) -> None:
    keys = make_keys()
    write_log(tmp_path / "log", keys, entries=20, robot_copy=True)
    items, _ = _export(tmp_path / "log", keys.robot_x, since_ns=None, until_ns=None, topics=None)
    assert len(items) == 20
    with pytest.raises(KeyMismatchError, match="opens none"):
        _export(tmp_path / "log", make_keys().auditor, since_ns=None, until_ns=None, topics=None)


@pytest.mark.clause("3.1b", "7.3")
def test_data_key_is_never_stored_in_the_clear(tmp_path: Path) -> None:
    keys = make_keys()
    writer = LogWriter(tmp_path / "log", keys.writer_keys())
    writer.open()
    secret = b"PLAINTEXT-MARKER-" * 4
    writer.append_message("/t", "std_msgs/msg/String", secret)
    writer.close()
    for path in (tmp_path / "log").rglob("*"):
        if path.is_file():
            assert b"PLAINTEXT-MARKER" not in path.read_bytes()


def test_second_writer_is_locked_out(tmp_path: Path) -> None:
    keys = make_keys()
    first = LogWriter(tmp_path / "log", keys.writer_keys())
    first.open()
    with pytest.raises(LogLockedError, match="another writer"):
        LogWriter(tmp_path / "log", keys.writer_keys()).open()
    first.close()


def test_wrong_robots_log_is_refused(tmp_path: Path) -> None:
    write_log(tmp_path / "log", make_keys(), entries=5)
    with pytest.raises(KeyMismatchError, match="holds the log of robot"):
        LogWriter(tmp_path / "log", make_keys(OTHER_ROBOT_ID).writer_keys()).open()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(LogWriteError, match="not writable"):
            LogWriter(folder, make_keys().writer_keys()).open()
    finally:
        folder.chmod(0o700)


def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LogWriteError, match="file"):
        LogWriter(blocker / "log", make_keys().writer_keys()).open()


def test_disk_full_keeps_entries_and_records_losses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = make_keys()
    policy = WriterPolicy(max_pending_bytes=1024 * 1024)
    writer = LogWriter(tmp_path / "log", keys.writer_keys(), policy)
    writer.open()
    writer.append_message("/t", "std_msgs/msg/String", b"before")
    writer.flush()
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    for i in range(5):
        writer.append_message("/t", "std_msgs/msg/String", f"during {i}".encode())
    with pytest.raises(LogWriteError, match="disk full"):
        writer.flush()
    for _ in range(200):  # beyond the pending budget: counted as lost, never silently
        writer.append_message("/t", "std_msgs/msg/String", os.urandom(8000))
    assert writer.stats.entries_lost > 0
    lost = writer.stats.entries_lost
    monkeypatch.setattr(os, "write", real_write)
    writer.flush()
    writer.close()
    items, outcome = _export(tmp_path / "log", keys.auditor, since_ns=None, until_ns=None, topics=None)
    assert not outcome.problems
    payloads = [i.entry.data for i in items]
    assert payloads[0] == b"before" and [f"during {i}".encode() for i in range(5)] == payloads[2:7]
    notices = [i for i in items if i.entry.kind == EntryKind.NOTICE and i.entry.topic == NOTICE_TOPIC]
    assert notices and b'"count": %d' % lost in notices[0].entry.data
    assert verify_log(tmp_path / "log").clean


def test_flush_thread_hands_its_write_error_to_other_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flush thread's failure is readable from another thread while it lasts, reported once
    when it starts, and cleared by the next successful flush."""
    keys = make_keys()
    writer = LogWriter(tmp_path / "log", keys.writer_keys(), WriterPolicy(fsync_interval_ms=5))
    writer.open()
    failures: list[BlackBoxError] = []
    attempts = []
    five_attempts, flushed = threading.Event(), threading.Event()
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        attempts.append(fd)
        if len(attempts) >= 5:
            five_attempts.set()
        raise OSError(errno.ENOSPC, "No space left on device")

    flusher = FlushThread(writer, failures.append, flushed.set)
    monkeypatch.setattr(os, "write", full)
    writer.append_message("/t", "std_msgs/msg/String", b"while full")
    flusher.start()
    try:
        assert five_attempts.wait(20.0), "the flush thread did not retry"
        assert "disk full" in flusher.write_error
        assert [str(f) for f in failures] == [flusher.write_error]  # once, not once per flush
        monkeypatch.setattr(os, "write", real_write)
        flushed.clear()
        assert flushed.wait(20.0), "no successful flush after the disk freed up"
        assert flusher.write_error == "" and writer.stats_snapshot().entries_durable == 1
    finally:
        monkeypatch.setattr(os, "write", real_write)
        flusher.stop()
        writer.close()


def test_rotation_by_size_and_age_chains_segments(tmp_path: Path) -> None:
    keys = make_keys()
    clock = FakeClock(step_ns=10_000_000_000)  # 10 s per clock call: age rotation kicks in
    policy = WriterPolicy(segment_max_age_s=60, segment_max_bytes=1 << 20)
    writer = LogWriter(tmp_path / "log", keys.writer_keys(), policy, clock)
    writer.open()
    for i in range(30):
        writer.append_message("/t", "std_msgs/msg/String", b"x%d" % i)
        writer.flush()
    writer.close()
    assert len(segments(tmp_path / "log")) > 3
    assert verify_log(tmp_path / "log").clean


def test_checkpoint_published_only_after_sync(tmp_path: Path) -> None:
    keys = make_keys()
    writer = LogWriter(tmp_path / "log", keys.writer_keys(), WriterPolicy(checkpoint_every_records=1))
    writer.open()
    assert writer.latest_checkpoint is None
    writer.append_message("/t", "std_msgs/msg/String", b"x")
    writer.flush()
    cp = writer.latest_checkpoint
    assert cp is not None and cp.sequence == 1 and cp.signature_valid(keys.signing.public_key())
    writer.close()


def test_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="fsync_interval_ms"):
        WriterPolicy(fsync_interval_ms=0)
    with pytest.raises(ValueError, match="checkpoint_every_s"):
        WriterPolicy(checkpoint_every_s=float("nan"))


def test_read_only_file_system_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def read_only(path, flags, *args):  # type: ignore[no-untyped-def]
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    (tmp_path / "log").mkdir()
    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(LogWriteError, match="not writable"):
        LogWriter(tmp_path / "log", make_keys().writer_keys()).open()


def test_a_ring_dump_does_not_hold_live_entries_back(tmp_path: Path) -> None:
    """An incident's ring dump (a minute at full rate) takes seconds to seal; a live entry queued after it
    is still written and fsynced by the next flush (durable on disk, readable and verifiable without
    closing: what a power cut leaves), and the dump follows within the backlog budget of each flush."""
    keys = make_keys()
    policy = WriterPolicy(block_max_bytes=1024, backlog_budget_ms=1, checkpoint_every_records=100)
    writer = LogWriter(tmp_path / "log", keys.writer_keys(), policy)
    writer.open()
    dump = 3000
    for i in range(dump):
        writer.append_backlog(Entry(1_000_000 + i, "/joint_states", "sensor_msgs/msg/JointState",
                                    f"ring {i:06d} ".encode() + os.urandom(200), "G-1", Tier.FULL_RATE))
    writer.append_message("/cmd_vel", "geometry_msgs/msg/Twist", b"live", "G-1")
    writer.flush()
    stats = writer.stats_snapshot()
    assert stats.live_entries_durable == stats.live_entries_appended == 1
    assert 0 < stats.backlog_entries < dump  # part of the dump sealed, the rest still queued
    items, outcome = _export(tmp_path / "log", keys.auditor, since_ns=None, until_ns=None, topics=None)
    assert not outcome.problems
    assert items[0].entry.data == b"live"  # sealed before the dump, in the first record of the flush
    ring = [int(i.entry.data[5:11]) for i in items[1:]]
    assert ring == list(range(len(ring))) and len(ring) == dump - stats.backlog_entries
    assert not verify_log(tmp_path / "log").errors
    writer.close()  # close seals the rest of the backlog, then CLOSE
    items, outcome = _export(tmp_path / "log", keys.auditor, since_ns=None, until_ns=None, topics=None)
    assert not outcome.problems and writer.stats_snapshot().backlog_entries == 0
    assert [int(i.entry.data[5:11]) for i in items[1:]] == list(range(dump))
    assert verify_log(tmp_path / "log").clean


@pytest.mark.parametrize(("encoding", "flags", "header_len"), [("zlib", 0, 34), ("zstd", 1, 22)])
def test_version_2_writes_compact_frames(tmp_path: Path, encoding: str, flags: int, header_len: int) -> None:
    """Version 2 records leave the nonce out (derived from the sequence: unique under the segment's key)."""
    keys = make_keys()
    write_log(tmp_path / "log", keys, entries=30, policy=WriterPolicy(payload_encoding=encoding))
    _prefix, records, _data = parse(segments(tmp_path / "log")[0])
    assert records and {r.flags for r in records} == {flags} and all(len(r.header) == header_len for r in records)
    items, outcome = _export(tmp_path / "log", keys.auditor, since_ns=None, until_ns=None, topics=None)
    assert not outcome.problems and len(items) == 30
    assert verify_log(tmp_path / "log").clean


def test_live_entries_whose_write_failed_are_not_counted_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backlog flush that succeeds after the live flush failed (disk full, then freed) does not count
    the requeued live entries as durable; the next live flush writes them."""
    keys = make_keys()
    writer = LogWriter(tmp_path / "log", keys.writer_keys(), WriterPolicy(block_max_bytes=1024, backlog_budget_ms=1))
    writer.open()
    for i in range(200):
        writer.append_backlog(Entry(1000 + i, "/joint_states", "sensor_msgs/msg/JointState", b"%06d" % i + bytes(300),
                                    "G-1", Tier.FULL_RATE))
    writer.append_message("/cmd_vel", "geometry_msgs/msg/Twist", b"live", "G-1")
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(LogWriteError):
        writer.flush(backlog=False)
    monkeypatch.setattr(os, "write", real_write)
    assert writer.flush_backlog()
    stats = writer.stats_snapshot()
    assert (stats.live_entries_appended, stats.live_entries_durable) == (1, 0) and stats.backlog_entries < 200
    writer.flush()
    assert writer.stats_snapshot().live_entries_durable == 1
    writer.close()
    items, outcome = _export(tmp_path / "log", keys.auditor, since_ns=None, until_ns=None, topics=None)
    assert not outcome.problems and sum(i.entry.data == b"live" for i in items) == 1 and len(items) == 201
