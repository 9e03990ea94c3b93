"""The append-only black-box log: segments, signed checkpoints, fsync policy, rotation, recovery.

Thread model: :meth:`LogWriter.append` only encodes the entry and queues it under a short lock;
:meth:`LogWriter.flush` (called by :class:`FlushThread` every ``fsync_interval_ms``, or by the
caller) seals the queued entries into DATA records, adds a checkpoint when due, writes and fsyncs.
The same short lock guards the counters and the latest checkpoint, so other threads read them
(:meth:`LogWriter.stats_snapshot`, :attr:`LogWriter.latest_checkpoint`) without waiting for I/O.
Entries reach the disk at most one flush interval (plus the write itself) after ``append``, which
bounds what a power cut can lose. A checkpoint is published (``latest_checkpoint``) only after the
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
from ftrobot_guard.blackbox.segment_writer import SegmentWriter

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
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"writer policy: {name}={getattr(self, name)!r} outside {allowed}")


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
    entries_durable: int = 0
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
        """Queue one entry (thread-safe, no I/O)."""
        data = encode_entry(entry)
        with self._state_lock:
            pending = self._pending
            if pending.size + len(data) > self.policy.max_pending_bytes:
                self.stats.entries_lost += 1
                if not self._lost_since_ns:
                    self._lost_since_ns = entry.time_ns
                return
            pending.chunks.append(data)
            pending.count += 1
            pending.size += len(data)
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

    def flush(self, sync: bool = True, force_checkpoint: bool = False) -> None:
        """Seal queued entries, checkpoint when due, write, and (``sync``) fsync. Rotates segments."""
        with self._io_lock:
            if self._segment is None:
                raise LogWriteError(f"{self.directory}: log is not open")
            self._flush_locked(sync=sync, force_checkpoint=force_checkpoint)

    def _take_pending(self) -> tuple[_Pending, int]:
        with self._state_lock:
            taken = self._pending
            self._pending = _Pending()
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
            while merged.size > self.policy.max_pending_bytes and merged.chunks:
                dropped = merged.chunks.pop(0)
                merged.size -= len(dropped)
                merged.count -= 1
                self.stats.entries_lost += 1
                if not self._lost_since_ns:
                    self._lost_since_ns = self._clock()
            self._pending = merged

    def _flush_locked(self, sync: bool = True, force_checkpoint: bool = False, close: bool = False) -> None:
        segment = self._segment
        assert segment is not None
        taken, reported_lost = self._take_pending()
        now = self._clock()
        blocks = _split_blocks(taken.chunks, self.policy.block_max_bytes, now)
        records_after = segment.records_since_checkpoint + len(blocks)
        due = (
            records_after >= self.policy.checkpoint_every_records
            or (records_after > 0 and now - self._last_checkpoint_ns >= self.policy.checkpoint_every_s * 1e9)
            or (force_checkpoint and records_after > 0)
        )
        rotate = not close and (
            segment.size >= self.policy.segment_max_bytes
            or now - self._segment_opened_ns >= self.policy.segment_max_age_s * 1e9
            or segment.wants_rotation  # the first segment after a start, once a dictionary can be built
        )
        closing = close or rotate
        batch = segment.seal(blocks, now if (due or closing) else None, close=closing)
        synced = bool(batch.data) and (sync or bool(batch.checkpoints))
        try:
            segment.write(batch)
            if synced:
                segment.sync()
        except LogWriteError as exc:
            with self._state_lock:
                self.stats.last_error = str(exc)
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
            self.stats.records_written += batch.records
            self.stats.bytes_written += len(batch.data)
            self.stats.last_error = ""
            if synced:
                self.stats.entries_durable = self.stats.entries_appended - self._pending.count
            if batch.checkpoints:
                self._latest_checkpoint = batch.checkpoints[-1]
        if batch.checkpoints:
            self._last_checkpoint_ns = now
        if rotate:
            self._start_segment(None)


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
        while not self._stop_event.wait(period):
            try:
                self._writer.flush()
            except BlackBoxError as exc:
                with self._error_lock:
                    new = str(exc) != self._write_error
                    self._write_error = str(exc)
                if new and self._on_error is not None:
                    self._on_error(exc)
                continue
            with self._error_lock:
                self._write_error = ""
            if self._on_flushed is not None:
                self._on_flushed()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
