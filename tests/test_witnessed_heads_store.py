"""The department's witnessed-heads store: one fsync per batch, durable before shown, failures reported, bounded memory."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ftrobot_guard.blackbox.witnessed_heads import (
    WitnessedHead,
    WitnessedHeadStore,
    export_heads,
    heads_document,
    load_witnessed_heads,
)
from ftrobot_guard.cli.main import main as ftrobot

ROBOTS = ("440304-RB-2026-000123-8", "440304-RB-2026-000124-6", "440304-RB-2026-000125-4")


def _head(sequence: int, segment: int = 0, robot: str = ROBOTS[0]) -> WitnessedHead:
    return WitnessedHead(robot, f"{segment:032x}", sequence, f"{sequence:064x}", witnessed_at_ns=1_000 + sequence)


class FsyncCounter:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.fail:
            raise OSError(5, "Input/output error")


def _lines(path: Path) -> list[WitnessedHead]:
    return load_witnessed_heads(path)


def test_one_fsync_per_batch_and_heads_shown_only_once_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "heads.jsonl"
    fsync = FsyncCounter()
    store = WitnessedHeadStore(path, fsync=fsync)
    batch = [_head(seq, robot=robot) for robot in ROBOTS for seq in range(1, 51)]
    assert all(store.witness(head) for head in batch)
    assert store.pending == 150 and store.heads() == [] and path.read_text() == ""  # nothing reported before disk
    assert fsync.calls == 0
    assert store.flush()
    assert fsync.calls == 1  # 150 heads, one fsync
    assert store.pending == 0 and len(_lines(path)) == 150
    assert [h.sequence for h in store.heads(ROBOTS[1])] == [50]  # the newest of its one segment
    with store:
        assert store.witness(_head(51)) and not store.witness(_head(51))  # a duplicate in the batch is refused
    assert fsync.calls == 2 and len(_lines(path)) == 151
    assert store.flush() and fsync.calls == 2  # an empty batch costs no fsync
    assert store.witness_many([_head(52), _head(53), _head(53)]) == 2 and fsync.calls == 3
    assert not store.witness(_head(53))  # already on disk
    assert WitnessedHeadStore(path).heads(ROBOTS[0]) == [_head(53)]  # durable: a new monitor finds it


def test_failed_write_is_reported_kept_and_written_later(tmp_path: Path) -> None:
    path = tmp_path / "heads.jsonl"
    store = WitnessedHeadStore(path)
    store.witness_many([_head(1)])
    path.unlink()
    path.mkdir()  # the store file cannot be opened for appending
    assert store.witness(_head(2)) and store.witness(_head(3))
    assert not store.flush()
    assert store.write_failures == 1 and "cannot append" in store.last_error and "kept queued" in store.last_error
    assert store.pending == 2 and store.heads() == [_head(1)]  # not shown as witnessed while not on disk
    assert not store.flush() and store.write_failures == 2
    path.rmdir()
    assert store.flush() and store.pending == 0
    assert _lines(path) == [_head(2), _head(3)] and store.heads() == [_head(3)]


def test_failed_fsync_leaves_no_partial_batch_and_is_retried(tmp_path: Path) -> None:
    path = tmp_path / "heads.jsonl"
    fsync = FsyncCounter()
    store = WitnessedHeadStore(path, fsync=fsync)
    store.witness_many([_head(1)])
    before = path.read_bytes()
    fsync.fail = True
    assert store.witness(_head(2)) and not store.flush()
    assert "Input/output error" in store.last_error and store.pending == 1
    assert path.read_bytes() == before  # the unsynced batch was cut off again
    fsync.fail = False
    assert store.flush()
    assert _lines(path) == [_head(1), _head(2)]  # written exactly once


def test_unwritten_heads_beyond_the_queue_limit_are_counted_lost(tmp_path: Path) -> None:
    path = tmp_path / "heads.jsonl"
    store = WitnessedHeadStore(path, max_pending=3, fsync=FsyncCounter(fail=True))
    for seq in range(1, 6):
        assert store.witness(_head(seq))
    assert store.pending == 3 and store.heads_lost == 2
    assert "2 witnessed head(s) lost" in store.last_error and "record 2 of" in store.last_error


def test_memory_is_bounded_and_the_file_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "heads.jsonl"
    store = WitnessedHeadStore(path, segments_per_robot=4)
    sequence = 0
    for segment in range(60):
        batch = []
        for _ in range(20):
            sequence += 1
            batch += [_head(sequence, segment, robot) for robot in ROBOTS]
        store.witness_many(batch)
        assert len(store) <= 4 * len(ROBOTS)
    assert len(store) == 4 * len(ROBOTS)
    assert [(h.segment_id, h.sequence) for h in store.heads(ROBOTS[2])] == [
        (f"{segment:032x}", 20 * (segment + 1)) for segment in range(56, 60)]
    assert len(_lines(path)) == 60 * 20 * len(ROBOTS)  # the full record
    reopened = WitnessedHeadStore(path, segments_per_robot=4)
    assert len(reopened) == 4 * len(ROBOTS) and reopened.heads() == store.heads()


def test_dept_heads_output_is_the_full_record_in_the_heads_file_format(tmp_path: Path) -> None:
    path = tmp_path / "heads.jsonl"
    store = WitnessedHeadStore(path, segments_per_robot=1)
    written = [_head(seq, seq // 10, robot) for seq in range(1, 40) for robot in ROBOTS[:2]]
    for start in range(0, len(written), 7):
        store.witness_many(written[start:start + 7])
    out = tmp_path / "heads.json"
    assert ftrobot(["dept", "heads", "--store", str(path), "--identity", ROBOTS[1], "--out", str(out)]) == 0
    mine = [h for h in written if h.identity_number == ROBOTS[1]]
    assert out.read_text() == json.dumps(heads_document(mine), indent=1, sort_keys=True) + "\n"
    assert out.read_text() == export_heads(path, ROBOTS[1])
    assert load_witnessed_heads(out) == mine  # every head, not only what the monitor keeps in memory


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ROBOTS), st.integers(0, 9), st.integers(1, 50)), max_size=200),
       st.integers(1, 5))
def test_kept_heads_are_the_newest_of_each_robots_recent_segments(
    witnessed: list[tuple[str, int, int]], segments_per_robot: int
) -> None:
    store = WitnessedHeadStore(None, segments_per_robot=segments_per_robot)
    for robot, segment, sequence in witnessed:
        store.witness_many([_head(sequence, segment, robot)])
    assert len(store) <= segments_per_robot * len(ROBOTS)
    for robot in ROBOTS:
        window: list[int] = []  # this robot's recent segments, most recently witnessed last
        newest: dict[int, int] = {}  # their highest sequence since they entered the window
        for who, segment, sequence in witnessed:
            if who != robot:
                continue
            window = [s for s in window if s != segment] + [segment]
            newest[segment] = max(newest.get(segment, 0), sequence)
            for forgotten in window[:-segments_per_robot]:
                del newest[forgotten]
            window = window[-segments_per_robot:]
        assert {h.segment_id: h.sequence for h in store.heads(robot)} == {f"{s:032x}": q for s, q in newest.items()}


@pytest.mark.clause("4.6")
@given(cut=st.integers(min_value=1, max_value=400))
@settings(max_examples=40, deadline=None)
def test_a_power_cut_mid_write_is_set_aside_and_the_store_opens(cut: int) -> None:
    """A flush interrupted by a power cut leaves an unfinished last line: it is set aside, never dropped."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "heads.jsonl"
        with WitnessedHeadStore(path) as store:
            store.witness_many([_head(1), _head(2)])
        complete = path.read_bytes()
        with WitnessedHeadStore(path) as store:
            store.witness_many([_head(3), _head(4)])
        written = path.read_bytes()
        torn_bytes = written[len(complete) : len(complete) + min(cut, len(written) - len(complete) - 1)]
        assume(not torn_bytes.endswith(b"\n"))   # a cut right after a newline tears nothing
        path.write_bytes(complete + torn_bytes)  # the second flush's write, torn before its last newline
        store = WitnessedHeadStore(path)
        kept_lines = complete + torn_bytes[: torn_bytes.rfind(b"\n") + 1]
        assert path.read_bytes() == kept_lines  # cut back to the last complete line
        assert store.repaired_tail.startswith(f"{path}: cut ")
        aside = sorted(Path(directory).glob("heads.jsonl.torn-*"))
        assert len(aside) == 1 and aside[0].read_bytes() == torn_bytes[torn_bytes.rfind(b"\n") + 1 :]
        with store:
            assert store.witness(_head(5))
        assert [h.sequence for h in load_witnessed_heads(path)][-1] == 5  # appended on a fresh line


def test_a_complete_store_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "heads.jsonl"
    with WitnessedHeadStore(path) as store:
        store.witness_many([_head(1)])
    before = path.read_bytes()
    assert WitnessedHeadStore(path).repaired_tail == "" and path.read_bytes() == before
    assert list(tmp_path.glob("*.torn-*")) == []
