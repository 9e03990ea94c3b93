"""The append-only black-box log: segments, signed checkpoints, fsync policy, rotation, recovery.

Thread model: :meth:`LogWriter.append` only encodes the entry and queues it under a short lock;
:meth:`LogWriter.flush` (called by :class:`FlushThread` every ``fsync_interval_ms``, or by the
caller) seals the queued entries into DATA records, adds a checkpoint when due, writes and fsyncs.
The same short lock guards the counters and the latest checkpoint, so other threads read them
(:meth:`LogWriter.stats_snapshot`, :attr:`LogWriter.latest_checkpoint`) without waiting for I/O.
Entries reach the disk at most one flush interval (plus the write itself) after ``append``, which
bounds what a power cut can lose. Entries that are already history when they arrive (an incident's
ring dump: the last minute at full rate, ~1-2 CPU s to seal) go through :meth:`LogWriter.append_backlog`
into a second queue: each flush seals and fsyncs the live entries first, then as much of the backlog
as ``backlog_budget_ms`` allows, so a dump never holds live entries back beyond the interval.
A checkpoint is published (``latest_checkpoint``) only after the
fsync that made it durable, so a witnessed checkpoint is never lost by a crash.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from ftrobot_guard.blackbox.durable_files import describe_os_error, write_new_file
from ftrobot_guard.blackbox.errors import BlackBoxError, LogLockedError, LogWriteError
from ftrobot_guard.blackbox.key_wrap import new_data_key, wrap_data_key
from ftrobot_guard.blackbox.record_format import (
    ZERO_HEAD,
    Checkpoint,
    Entry,
    EntryKind,
    RecoveryNote,
    SegmentHeader,
    Tier,
    encode_entry,
)
from ftrobot_guard.blackbox.recovery import RecoveryOutcome, recover_log
from ftrobot_guard.blackbox.segment_reader import LOCK_FILE, sidecar_wrap_path
from ftrobot_guard.blackbox.segment_writer import SealedBatch, SegmentWriter

NOTICE_TOPIC = "/blackbox/notice"
NOTICE_TYPE = "ftrobot_guard/blackbox/Notice"


@dataclass(frozen=True)
class WriterPolicy:
    """How often the log syncs, checkpoints and rotates. Validated on construction."""

    fsync_interval_ms: int = 100
    checkpoint_every_records: int = 1000
    checkpoint_every_s: float = 2.0
    segment_max_bytes: int = 32 * 1024 * 1024
    segment_max_age_s: float = 3600.0
    block_max_bytes: int = 256 * 1024
    compress_level: int = 1
    max_pending_bytes: int = 64 * 1024 * 1024
    payload_encoding: str = "zstd"  # "zlib" writes format version 1 (docs/blackbox-format.md §5.1)
    backlog_budget_ms: int = 0  # sealing time per flush for backlog entries (a ring dump); 0: half the interval

    def __post_init__(self) -> None:
        checks = (
            ("fsync_interval_ms", 1 <= self.fsync_interval_ms <= 60_000, "1..60000"),
            ("checkpoint_every_records", 1 <= self.checkpoint_every_records <= 10_000_000, "1..10000000"),
            ("checkpoint_every_s", _finite(self.checkpoint_every_s) and 0.01 <= self.checkpoint_every_s <= 3600,
             "0.01..3600"),
            ("segment_max_bytes", 4096 <= self.segment_max_bytes <= 1 << 34, "4096..2^34"),
            ("segment_max_age_s", _finite(self.segment_max_age_s) and 1 <= self.segment_max_age_s <= 7 * 86400,
             "1..604800"),
            ("block_max_bytes", 1024 <= self.block_max_bytes <= 16 * 1024 * 1024, "1024..16777216"),
            ("compress_level", 0 <= self.compress_level <= 9, "0..9"),
            ("max_pending_bytes", 1024 * 1024 <= self.max_pending_bytes <= 1 << 32, "1 MiB..4 GiB"),
            ("payload_encoding", self.payload_encoding in ("zlib", "zstd"), "zlib | zstd"),
            ("backlog_budget_ms", 0 <= self.backlog_budget_ms <= 60_000, "0..60000"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"writer policy: {name}={getattr(self, name)!r} outside {allowed}")

    @property
    def backlog_budget_s(self) -> float:
        """Seconds of sealing per flush for the backlog (at least one block is sealed per flush)."""
        return (self.backlog_budget_ms or max(1, self.fsync_interval_ms // 2)) / 1000.0


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@dataclass(frozen=True)
class WriterKeys:
    """Who writes the log and who can read it."""

    robot_id: str
    signing_key: ed25519.Ed25519PrivateKey
    recipients: tuple[x25519.X25519PublicKey, ...]  # auditor / department keys (at least one)
    robot_recipient: x25519.X25519PublicKey | None = None  # optional own copy (sidecar, shredded at decommission)
    certificate_der: bytes = b""

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ValueError("writer keys: at least one auditor/department X25519 key is required")
        if not self.robot_id:
            raise ValueError("writer keys: robot_id is empty")


@dataclass
class WriterStats:
    entries_appended: int = 0
    entries_durable: int = 0  # appended entries no longer queued (live and backlog), after an fsync
    live_entries_appended: int = 0  # entries queued by append() (the live queue, first in first out)
    live_entries_durable: int = 0  # the first this many of those are on disk and fsynced
    backlog_entries: int = 0  # entries queued by append_backlog() and not yet written
    entries_lost: int = 0  # dropped and not yet reported by a NOTICE entry (queue full while the disk was full)
    entries_lost_total: int = 0  # dropped and reported
    records_written: int = 0
    bytes_written: int = 0
    segments_opened: int = 0
    flushes: int = 0
    last_error: str = ""


@dataclass
class _Pending:
    chunks: list[bytes] = field(default_factory=list)
    count: int = 0
    size: int = 0


class LogWriter:
    """Append-only writer for one log directory (single writer, enforced by a lock file)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        keys: WriterKeys,
        policy: WriterPolicy | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.directory = Path(directory)
        self.keys = keys
        self.policy = policy or WriterPolicy()
        self._clock = clock
        self._pending = _Pending()
        self._backlog: deque[bytes] = deque()  # encoded entries queued by append_backlog(), in order
        self._backlog_size = 0
        self._live_taken = 0  # live_entries_appended when the live queue was last taken
        self._live_written = 0  # the same, as of the last live batch written
        self._state_lock = threading.Lock()  # the queue, ``stats`` and the latest checkpoint; never held during I/O
        self._io_lock = threading.RLock()
        self._segment: SegmentWriter | None = None
        self._segment_opened_ns = 0
        self._last_checkpoint_ns = 0
        self._lock_fd = -1
        self._log_id = ""
        self._latest_checkpoint: Checkpoint | None = None
        self._lost_since_ns = 0
        self.stats = WriterStats()
        self.recovery: RecoveryOutcome | None = None

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> RecoveryOutcome:
        """Lock the directory, recover a crashed tail, and start a new segment."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LogWriteError(describe_os_error(self.directory, exc, "creating the log directory")) from None
        self._acquire_lock()
        try:
            outcome = recover_log(self.directory, self.keys.signing_key.public_key(), self.keys.robot_id)
            self.recovery = outcome
            with self._io_lock:
                self._start_segment(outcome)
        except BaseException:
            self._release_lock()
            raise
        return outcome

    def _acquire_lock(self) -> None:
        path = self.directory / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as exc:
            raise LogWriteError(describe_os_error(path, exc, "creating the lock file")) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LogLockedError(f"{self.directory}: another writer has the log open ({path} is locked)") from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def close(self) -> None:
        """Flush everything, write a signed CLOSE record, sync, and release the lock."""
        with self._io_lock:
            try:
                if self._segment is not None and not self._segment.closed:
                    self._flush_locked(close=True)
            finally:
                if self._segment is not None:
                    self._segment.release()
                    self._segment = None
                self._release_lock()

    def __enter__(self) -> LogWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ segments

    def _start_segment(self, outcome: RecoveryOutcome | None) -> None:
        tail = outcome.tail if outcome is not None else None
        note: RecoveryNote | None = outcome.note if outcome is not None else None
        if self._segment is not None:
            index = self._segment.header.segment_index + 1
            first_sequence = self._segment.next_sequence
            prev_id = self._segment.header.segment_id
            prev_head = self._segment.head
        elif tail is not None:
            index = tail.segment_index + 1
            first_sequence = tail.last_sequence + 1
            prev_id = tail.segment_id
            prev_head = tail.head
            self._log_id = tail.log_id
        else:
            index, first_sequence, prev_id, prev_head = 0, 1, "", ZERO_HEAD
            self._log_id = os.urandom(16).hex()
        segment_id = os.urandom(16).hex()
        segment_id_raw = bytes.fromhex(segment_id)
        data_key = new_data_key()
        wraps = tuple(wrap_data_key(data_key, r, segment_id_raw) for r in self.keys.recipients)
        robot_wrap = (
            wrap_data_key(data_key, self.keys.robot_recipient, segment_id_raw)
            if self.keys.robot_recipient is not None
            else None
        )
        now = self._clock()
        header = SegmentHeader(
            robot_id=self.keys.robot_id,
            robot_key=self.keys.signing_key.public_key().public_bytes_raw().hex(),
            log_id=self._log_id,
            segment_id=segment_id,
            segment_index=index,
            first_sequence=first_sequence,
            prev_segment_id=prev_id,
            prev_chain_head=prev_head.hex(),
            created_ns=now,
            key_wraps=wraps,
            robot_key_wrap="sidecar" if robot_wrap is not None else "none",
            checkpoint_every_records=self.policy.checkpoint_every_records,
            checkpoint_every_s=self.policy.checkpoint_every_s,
            fsync_interval_ms=self.policy.fsync_interval_ms,
            recovery=note,
            certificate=self.keys.certificate_der.hex(),
        )
        if robot_wrap is not None:
            self._write_sidecar(segment_id, json.dumps(robot_wrap.to_json(), sort_keys=True).encode("ascii"))
        segment = SegmentWriter(self.directory, header, self.keys.signing_key, data_key, self.policy.compress_level,
                                self.policy.payload_encoding, previous=self._segment)
        del data_key
        if self._segment is not None:
            self._segment.release()
        self._segment = segment
        self._segment_opened_ns = now
        self._last_checkpoint_ns = now
        with self._state_lock:
            self.stats.segments_opened += 1

    def _write_sidecar(self, segment_id: str, data: bytes) -> None:
        path = sidecar_wrap_path(self.directory, segment_id)
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise LogWriteError(describe_os_error(path.parent, exc, "writing the robot's key wrap")) from None
        write_new_file(path, data, 0o600, "writing the robot's key wrap")

    # ------------------------------------------------------------------ appending

    def append(self, entry: Entry) -> None:
        """Queue one live entry (thread-safe, no I/O): it is on disk within one flush interval."""
        self._queue(entry, backlog=False)

    def append_backlog(self, entry: Entry) -> None:
        """Queue an entry that is already history when it arrives (an incident's ring dump). Backlog
        entries keep their order among themselves; each flush seals them after the live entries, within
        the policy's ``backlog_budget_ms``, so a large dump never delays live entries past the interval."""
        self._queue(entry, backlog=True)

    def _queue(self, entry: Entry, backlog: bool) -> None:
        data = encode_entry(entry)
        with self._state_lock:
            pending = self._pending
            if pending.size + self._backlog_size + len(data) > self.policy.max_pending_bytes:
                self.stats.entries_lost += 1
                if not self._lost_since_ns:
                    self._lost_since_ns = entry.time_ns
                return
            if backlog:
                self._backlog.append(data)
                self._backlog_size += len(data)
                self.stats.backlog_entries += 1
            else:
                pending.chunks.append(data)
                pending.count += 1
                pending.size += len(data)
                self.stats.live_entries_appended += 1
            self.stats.entries_appended += 1

    def append_message(
        self,
        topic: str,
        type_name: str,
        data: bytes,
        guardian: str = "",
        tier: Tier = Tier.EVENT,
        time_ns: int | None = None,
    ) -> None:
        """Queue a serialized message (as rosbag2 stores it: topic, type name, CDR bytes)."""
        self.append(Entry(time_ns if time_ns is not None else self._clock(), topic, type_name, data, guardian, tier))

    # ------------------------------------------------------------------ flushing

    @property
    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint that is on disk (safe to publish for witnessing)."""
        with self._state_lock:
            return self._latest_checkpoint

    @property
    def segment_path(self) -> Path | None:
        segment = self._segment  # one read: the flush thread may rotate or close it meanwhile
        return segment.path if segment is not None else None

    def stats_snapshot(self) -> WriterStats:
        """A consistent copy of :attr:`stats`, safe to take from any thread."""
        with self._state_lock:
            return dataclasses.replace(self.stats)

    def flush(self, sync: bool = True, force_checkpoint: bool = False, backlog: bool = True) -> None:
        """Seal queued entries, checkpoint when due, write, and (``sync``) fsync. Rotates segments.
        The live entries first; then (``backlog``) as much of the backlog as the budget allows."""
        with self._io_lock:
            if self._segment is None:
                raise LogWriteError(f"{self.directory}: log is not open")
            self._flush_locked(sync=sync, force_checkpoint=force_checkpoint)
            if backlog:
                self._flush_backlog(sync, close=False)

    def flush_backlog(self, sync: bool = True) -> bool:
        """Seal, write and (``sync``) fsync as much of the backlog as the budget allows; False when
        the backlog was empty."""
        with self._io_lock:
            if self._segment is None:
                raise LogWriteError(f"{self.directory}: log is not open")
            return self._flush_backlog(sync, close=False)

    def _take_pending(self) -> tuple[_Pending, int]:
        with self._state_lock:
            taken = self._pending
            self._pending = _Pending()
            self._live_taken = self.stats.live_entries_appended
            lost = self.stats.entries_lost
            since = self._lost_since_ns
        if lost:
            notice = encode_entry(
                Entry(
                    self._clock(),
                    NOTICE_TOPIC,
                    NOTICE_TYPE,
                    json.dumps({"event": "entries_lost", "count": lost, "since_ns": since}).encode("utf-8"),
                    tier=Tier.EVENT,
                    kind=EntryKind.NOTICE,
                )
            )
            taken.chunks.insert(0, notice)
            taken.count += 1
            taken.size += len(notice)
        return taken, lost

    def _requeue(self, taken: _Pending) -> None:
        with self._state_lock:
            merged = _Pending(taken.chunks + self._pending.chunks, taken.count + self._pending.count,
                              taken.size + self._pending.size)
            while merged.size + self._backlog_size > self.policy.max_pending_bytes and merged.chunks:
                dropped = merged.chunks.pop(0)
                merged.size -= len(dropped)
                merged.count -= 1
                self.stats.entries_lost += 1
                if not self._lost_since_ns:
                    self._lost_since_ns = self._clock()
            self._pending = merged

    def _take_backlog_block(self) -> list[bytes]:
        """Pop the next backlog block (at most ``block_max_bytes``, at least one entry)."""
        chunks: list[bytes] = []
        size = 0
        with self._state_lock:
            backlog = self._backlog
            while backlog and (not chunks or size + len(backlog[0]) <= self.policy.block_max_bytes):
                chunk = backlog.popleft()
                chunks.append(chunk)
                size += len(chunk)
            self._backlog_size -= size
        return chunks

    def _return_backlog(self, chunks: list[bytes]) -> None:
        with self._state_lock:
            self._backlog.extendleft(reversed(chunks))
            self._backlog_size += sum(len(c) for c in chunks)

    def _checkpoint_due(self, segment: SegmentWriter, new_records: int, now: int, force: bool) -> bool:
        records_after = segment.records_since_checkpoint + new_records
        return (
            records_after >= self.policy.checkpoint_every_records
            or (records_after > 0 and now - self._last_checkpoint_ns >= self.policy.checkpoint_every_s * 1e9)
            or (force and records_after > 0)
        )

    def _write_batch(self, segment: SegmentWriter, batch: SealedBatch, sync: bool, now: int) -> bool:
        """Write (and fsync when asked or when it holds a checkpoint); True when it was fsynced."""
        synced = bool(batch.parts) and (sync or bool(batch.checkpoints))
        try:
            segment.write(batch)
            if synced:
                segment.sync()
        except LogWriteError as exc:
            with self._state_lock:
                self.stats.last_error = str(exc)
            raise
        if batch.checkpoints:
            self._last_checkpoint_ns = now
        return synced

    def _flush_locked(self, sync: bool = True, force_checkpoint: bool = False, close: bool = False) -> None:
        segment = self._segment
        assert segment is not None
        # 1. the live entries: sealed, written and fsynced first, whatever the backlog holds
        taken, reported_lost = self._take_pending()
        now = self._clock()
        blocks = _split_blocks(taken.chunks, self.policy.block_max_bytes, now)
        with self._state_lock:
            backlog_waiting = bool(self._backlog)
        rotate = not close and (
            segment.size >= self.policy.segment_max_bytes
            or now - self._segment_opened_ns >= self.policy.segment_max_age_s * 1e9
            or segment.wants_rotation  # the first segment after a start, once a dictionary can be built
        )
        closing = rotate or (close and not backlog_waiting)
        due = self._checkpoint_due(segment, len(blocks), now, force_checkpoint)
        batch = segment.seal(blocks, now if (due or closing) else None, close=closing)
        try:
            synced = self._write_batch(segment, batch, sync, now)
        except LogWriteError:
            if reported_lost:
                notice = taken.chunks.pop(0)  # rebuilt with the updated count next time
                taken.count -= 1
                taken.size -= len(notice)
            self._requeue(taken)
            raise
        with self._state_lock:
            if reported_lost:
                self.stats.entries_lost -= reported_lost
                self.stats.entries_lost_total += reported_lost
                if not self.stats.entries_lost:
                    self._lost_since_ns = 0
            self.stats.flushes += 1
            self._live_written = self._live_taken
            self._account(batch, synced)
        if rotate:
            self._start_segment(None)
        if close and backlog_waiting:
            self._flush_backlog(sync, close=True)

    def _flush_backlog(self, sync: bool, close: bool) -> bool:
        """2. the backlog, after the live entries: as much as the budget allows (all of it at close)."""
        segment = self._segment
        assert segment is not None
        with self._state_lock:
            if not self._backlog:
                return False
        deadline = time.perf_counter() + self.policy.backlog_budget_s
        now = self._clock()
        taken: list[bytes] = []
        batch: SealedBatch | None = None
        blocks = 0
        while close or batch is None or time.perf_counter() < deadline:
            chunks = self._take_backlog_block()
            if not chunks:
                break
            taken += chunks
            batch = segment.seal([(b"".join(chunks), now)], None, after=batch)
            blocks += 1
        if self._checkpoint_due(segment, blocks, now, False) or close:
            batch = segment.seal([], now, close=close, after=batch)
        if batch is None:
            return False
        try:
            synced = self._write_batch(segment, batch, sync, now)
        except LogWriteError:
            self._return_backlog(taken)
            raise
        with self._state_lock:
            self.stats.backlog_entries -= len(taken)
            self._account(batch, synced)
        return True

    def _account(self, batch: SealedBatch, synced: bool) -> None:
        """Counters after a written batch (state lock held)."""
        stats = self.stats
        stats.records_written += batch.records
        stats.bytes_written += batch.size
        stats.last_error = ""
        if synced:
            stats.entries_durable = stats.entries_appended - self._pending.count - len(self._backlog)
            stats.live_entries_durable = self._live_written
        if batch.checkpoints:
            self._latest_checkpoint = batch.checkpoints[-1]


def _split_blocks(chunks: list[bytes], block_max: int, now: int) -> list[tuple[bytes, int]]:
    """Group encoded entries into DATA blocks of at most ``block_max`` bytes (one oversized entry
    forms its own block)."""
    blocks: list[tuple[bytes, int]] = []
    current: list[bytes] = []
    size = 0
    for chunk in chunks:
        if current and size + len(chunk) > block_max:
            blocks.append((b"".join(current), now))
            current, size = [], 0
        current.append(chunk)
        size += len(chunk)
    if current:
        blocks.append((b"".join(current), now))
    return blocks


class FlushThread(threading.Thread):
    """Calls ``writer.flush()`` every ``fsync_interval_ms``. The current write failure is
    :attr:`write_error` ("" while flushes succeed), safe to read from any thread; ``on_error`` is
    called when a new failure starts (e.g. to log it once) and ``on_flushed`` after each successful
    flush (e.g. to publish a new durable checkpoint)."""

    def __init__(
        self,
        writer: LogWriter,
        on_error: Callable[[BlackBoxError], None] | None = None,
        on_flushed: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name="blackbox-flush", daemon=True)
        self._writer = writer
        self._on_error = on_error
        self._on_flushed = on_flushed
        self._stop_event = threading.Event()
        self._error_lock = threading.Lock()
        self._write_error = ""

    @property
    def write_error(self) -> str:
        """Why the last flush failed, or "" when it succeeded."""
        with self._error_lock:
            return self._write_error

    def run(self) -> None:
        period = self._writer.policy.fsync_interval_ms / 1000.0
        next_at = time.monotonic() + period  # a fixed cadence: a long flush does not push the next one back
        while not self._stop_event.wait(max(0.0, next_at - time.monotonic())):
            next_at = max(next_at + period, time.monotonic())
            # the live entries (durable, then announced), then a budgeted share of the backlog
            live = self._attempt(lambda: self._writer.flush(backlog=False))
            if live and self._on_flushed is not None:
                self._on_flushed()
            if live and self._attempt(self._writer.flush_backlog) and self._on_flushed is not None:
                self._on_flushed()

    def _attempt(self, flush: Callable[[], bool | None]) -> bool:
        """Run one flush; True when it succeeded and wrote (a flush returning False wrote nothing)."""
        try:
            wrote = flush() is not False
        except BlackBoxError as exc:
            with self._error_lock:
                new = str(exc) != self._write_error
                self._write_error = str(exc)
            if new and self._on_error is not None:
                self._on_error(exc)
            return False
        if wrote:  # an empty backlog flush proves nothing about the disk: the error stays until a write succeeds
            with self._error_lock:
                self._write_error = ""
        return wrote

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
