"""ReplayMemory: nonces remembered durably before acceptance, across a restart, torn lines and failures."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from ftrobot_guard.guardians import replay_memory
from ftrobot_guard.guardians.replay_memory import ReplayMemory, ReplayMemoryError

pytestmark = pytest.mark.clause("6.3")

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def nonce(i: int) -> bytes:
    return i.to_bytes(16, "big")


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="ascii").splitlines()


def test_a_remembered_nonce_is_seen_also_after_a_restart(tmp_path: Path) -> None:
    path, clock = tmp_path / "nonces", Clock()
    memory = ReplayMemory(path, 10.0, clock=clock)
    assert not memory.seen(nonce(1))
    memory.remember(nonce(1), T0)
    assert memory.seen(nonce(1)) and not memory.seen(nonce(2))
    assert lines(path) == [f"{nonce(1).hex()} {T0.isoformat()}"]
    restarted = ReplayMemory(path, 10.0, clock=clock)
    assert restarted.seen(nonce(1)) and len(restarted) == 1 and restarted.load_problems == ()
    with pytest.raises(ReplayMemoryError, match="already"):
        restarted.remember(nonce(1), T0)


def test_the_line_is_on_disk_before_remember_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    ReplayMemory(tmp_path / "nonces", 10.0, clock=Clock()).remember(nonce(1), T0)
    assert synced, "remember() must fsync before returning"


def test_a_torn_last_line_is_ignored_and_the_file_repaired(tmp_path: Path) -> None:
    path, clock = tmp_path / "nonces", Clock()
    memory = ReplayMemory(path, 10.0, clock=clock)
    memory.remember(nonce(1), T0)
    with path.open("ab") as handle:
        handle.write(nonce(2).hex().encode()[:20])  # power cut mid-append
    restarted = ReplayMemory(path, 10.0, clock=clock)
    assert restarted.seen(nonce(1)) and not restarted.seen(nonce(2))
    assert any("torn" in problem for problem in restarted.load_problems)
    restarted.remember(nonce(3), T0)
    again = ReplayMemory(path, 10.0, clock=clock)
    assert again.seen(nonce(1)) and again.seen(nonce(3)) and again.load_problems == ()
    assert len(lines(path)) == 2


def test_unreadable_lines_in_the_middle_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "nonces"
    path.write_text(f"garbage\n{nonce(5).hex()} {T0.isoformat()}\n{nonce(6).hex()} not-a-time\n", encoding="ascii")
    memory = ReplayMemory(path, 10.0, clock=Clock())
    assert memory.seen(nonce(5)) and not memory.seen(nonce(6))
    assert any("2 unreadable" in problem for problem in memory.load_problems)
    assert lines(path) == [f"{nonce(5).hex()} {T0.isoformat()}"]


def test_entries_older_than_the_horizon_are_forgotten_and_compacted_at_start(tmp_path: Path) -> None:
    path, clock = tmp_path / "nonces", Clock()
    memory = ReplayMemory(path, 10.0, clock=clock)
    memory.remember(nonce(1), T0 - dt.timedelta(seconds=9))
    memory.remember(nonce(2), T0)
    clock.now = T0 + dt.timedelta(seconds=5)
    memory.remember(nonce(3), clock.now)
    assert not memory.seen(nonce(1)) and memory.seen(nonce(2))
    assert len(lines(path)) == 3  # appended; compaction waits for growth
    restarted = ReplayMemory(path, 10.0, clock=clock)
    assert not restarted.seen(nonce(1)) and restarted.seen(nonce(2)) and restarted.seen(nonce(3))
    assert len(lines(path)) == 2


def test_the_verifiers_wall_clock_decides_what_is_forgotten(tmp_path: Path) -> None:
    memory = ReplayMemory(None, 10.0, clock=Clock(T0 + dt.timedelta(days=1)))
    memory.remember(nonce(1), T0, now=T0)
    memory.remember(nonce(2), T0, now=T0 + dt.timedelta(seconds=3))
    assert memory.seen(nonce(1))  # the memory's own clock (a day ahead) did not forget it
    memory.remember(nonce(3), T0, now=T0 + dt.timedelta(seconds=11))
    assert not memory.seen(nonce(1))


def test_the_file_is_compacted_when_it_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_memory, "COMPACT_SLACK", 5)
    path, clock = tmp_path / "nonces", Clock()
    memory = ReplayMemory(path, 2.0, clock=clock)
    for i in range(60):
        clock.now = T0 + dt.timedelta(seconds=i)
        memory.remember(nonce(i), clock.now)
        assert len(lines(path)) <= 2 * len(memory) + 6
    assert ReplayMemory(path, 2.0, clock=clock).seen(nonce(59))


def test_an_unwritable_memory_raises_and_remembers_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    memory = ReplayMemory(blocker / "nonces", 10.0, clock=Clock())
    with pytest.raises(ReplayMemoryError, match="nonces"):
        memory.remember(nonce(1), T0)
    assert not memory.seen(nonce(1))


def test_a_short_write_is_repaired_before_the_next_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, clock = tmp_path / "nonces", Clock()
    memory = ReplayMemory(path, 10.0, clock=clock)
    memory.remember(nonce(1), T0)
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:7]))
    with pytest.raises(ReplayMemoryError, match="short write"):
        memory.remember(nonce(2), T0)
    monkeypatch.setattr(os, "write", real_write)
    memory.remember(nonce(3), T0)
    restarted = ReplayMemory(path, 10.0, clock=clock)
    assert restarted.seen(nonce(1)) and restarted.seen(nonce(3)) and not restarted.seen(nonce(2))
    assert restarted.load_problems == ()


def test_a_full_memory_refuses_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_memory, "MAX_REMEMBERED_NONCES", 3)
    memory = ReplayMemory(None, 10.0, clock=Clock())
    for i in range(3):
        memory.remember(nonce(i), T0)
    with pytest.raises(ReplayMemoryError, match="try again"):
        memory.remember(nonce(9), T0)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        ReplayMemory(None, 0.0)
    with pytest.raises(ValueError):
        ReplayMemory(None, float("nan"))
    memory = ReplayMemory(None, 10.0)
    with pytest.raises(ValueError):
        memory.remember(bytes(15), T0)
    with pytest.raises(ValueError):
        memory.remember(nonce(1), T0.replace(tzinfo=None))
