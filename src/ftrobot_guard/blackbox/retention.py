"""Retention and disk budget: keep at least ``retention_days`` (≥ 183, the regulation's six months),
delete the oldest closed segments beyond the budget only when they are older than that, and leave a
signed deletion manifest so the rest of the log still verifies. :func:`retention_status` gives the
level (OK / WARN / ERROR) the recorder turns into /diagnostics, well before the budget is hit.
:class:`RetentionWorker` runs both on a thread of their own, off the recorder's message path."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.blackbox.deletion_manifest import DeletedSegment, write_deletion_manifest
from ftrobot_guard.blackbox.durable_files import describe_os_error, fsync_directory
from ftrobot_guard.blackbox.errors import BlackBoxError, LogWriteError
from ftrobot_guard.blackbox.record_format import SegmentPrefix
from ftrobot_guard.blackbox.recovery import walk_valid_records
from ftrobot_guard.blackbox.segment_reader import (
    directory_size,
    list_segments,
    read_file_bytes,
    scan_records,
    sidecar_wrap_path,
)

MIN_RETENTION_DAYS = 183.0
DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class RetentionPolicy:
    retention_days: float = MIN_RETENTION_DAYS
    budget_bytes: int = 16 * 1024**3
    warn_fraction: float = 0.8

    def __post_init__(self) -> None:
        if not (isinstance(self.retention_days, (int, float)) and math.isfinite(self.retention_days)
                and MIN_RETENTION_DAYS <= self.retention_days <= 36_500):
            raise ValueError(f"retention_days={self.retention_days!r}: must be 183..36500 (logs are kept at least"
                             " six months)")
        if not isinstance(self.budget_bytes, int) or self.budget_bytes < 1024 * 1024:
            raise ValueError(f"budget_bytes={self.budget_bytes!r}: must be an integer of at least 1 MiB")
        if not (isinstance(self.warn_fraction, (int, float)) and 0.1 <= self.warn_fraction < 1.0):
            raise ValueError(f"warn_fraction={self.warn_fraction!r}: must be in 0.1..0.99")

    @property
    def retention_ns(self) -> int:
        return int(self.retention_days * DAY_NS)


@dataclass(frozen=True)
class RetentionStatus:
    level: str  # "OK", "WARN" or "ERROR"
    message: str
    used_bytes: int
    budget_bytes: int
    segments: int
    oldest_ns: int
    newest_ns: int
    bytes_per_day: float | None  # observed rate (None until the log spans an hour)
    days_capacity: float | None  # budget / rate

    def as_dict(self) -> dict[str, str]:
        return {
            "level": self.level,
            "used_bytes": str(self.used_bytes),
            "budget_bytes": str(self.budget_bytes),
            "segments": str(self.segments),
            "bytes_per_day": "unknown" if self.bytes_per_day is None else f"{self.bytes_per_day:.0f}",
            "days_capacity": "unknown" if self.days_capacity is None else f"{self.days_capacity:.1f}",
        }


def retention_status(
    directory: Path, policy: RetentionPolicy, now_ns: int, bytes_per_day: float | None = None
) -> RetentionStatus:
    """How full the budget is and whether it can hold the retention period at the current rate."""
    headers = list_segments(directory).segments
    used = directory_size(directory)
    oldest = headers[0].prefix.header.created_ns if headers else now_ns
    newest = now_ns
    span_days = (newest - oldest) / DAY_NS
    rate = bytes_per_day
    if rate is None and span_days >= 1 / 24:
        rate = used / span_days
    capacity = policy.budget_bytes / rate if rate else None
    fraction = used / policy.budget_bytes
    if used > policy.budget_bytes:
        level = "ERROR"
        message = (f"log uses {used / 2**20:.0f} MiB, over the {policy.budget_bytes / 2**20:.0f} MiB budget; nothing"
                   f" younger than {policy.retention_days:g} days is deleted: add disk or lower recording rates")
    elif fraction >= policy.warn_fraction:
        level = "WARN"
        message = f"log uses {fraction:.0%} of its {policy.budget_bytes / 2**20:.0f} MiB budget"
    elif rate is not None and capacity is not None and capacity < policy.retention_days:
        level = "WARN"
        message = (f"at {rate / 2**20:.1f} MiB/day the {policy.budget_bytes / 2**20:.0f} MiB budget holds only"
                   f" {capacity:.0f} days, less than the {policy.retention_days:g}-day retention")
    else:
        level = "OK"
        message = f"log uses {fraction:.0%} of its budget"
    return RetentionStatus(level, message, used, policy.budget_bytes, len(headers), oldest, newest, rate, capacity)


@dataclass
class RetentionResult:
    deleted: list[DeletedSegment] = field(default_factory=list)
    manifest: Path | None = None
    freed_bytes: int = 0
    status: RetentionStatus | None = None


def enforce_retention(
    directory: Path,
    signing_key: ed25519.Ed25519PrivateKey,
    robot_id: str,
    policy: RetentionPolicy,
    now_ns: int,
    keep_segment_ids: frozenset[str] = frozenset(),
) -> RetentionResult:
    """Delete the oldest closed segments while the log is over budget, only those whose last record
    is older than the retention period, never leaving a hole (always the lowest index first).
    A signed manifest listing them (with final chain heads) is made durable before any deletion."""
    result = RetentionResult()
    used = directory_size(directory)
    if used <= policy.budget_bytes:
        result.status = retention_status(directory, policy, now_ns)
        return result
    cutoff = now_ns - policy.retention_ns
    public_key = signing_key.public_key()
    victims: list[tuple[Path, DeletedSegment]] = []
    headers = list_segments(directory).segments
    log_id = headers[-1].prefix.header.log_id if headers else ""
    for item in headers[:-1]:  # the newest segment is the one being written
        path, prefix = item.path, item.prefix
        header = prefix.header
        if used <= policy.budget_bytes or header.segment_id in keep_segment_ids:
            break
        buf = read_file_bytes(path)
        valid = walk_valid_records(buf, prefix, public_key)
        last_time = _last_time(buf, prefix, valid.end)
        if not valid.closed or valid.end != len(buf) or last_time >= cutoff:
            break  # open, damaged (evidence: keep) or too young: stop, never skip ahead
        victims.append((path, DeletedSegment(
            segment_index=header.segment_index, segment_id=header.segment_id,
            first_sequence=header.first_sequence, last_sequence=valid.last_sequence, final_head=valid.head.hex(),
            created_ns=header.created_ns, last_time_ns=last_time, size=len(buf))))
        used -= len(buf)
    if victims:
        result.manifest = write_deletion_manifest(
            directory, signing_key, robot_id, log_id, now_ns,
            f"disk budget {policy.budget_bytes} bytes exceeded; segments older than {policy.retention_days:g} days",
            [d for _p, d in victims])
        for path, deleted in victims:
            try:
                path.unlink()
                sidecar_wrap_path(directory, deleted.segment_id).unlink(missing_ok=True)
            except OSError as exc:
                raise LogWriteError(describe_os_error(path, exc, "deleting an expired segment")) from None
            result.deleted.append(deleted)
            result.freed_bytes += deleted.size
        try:
            fsync_directory(directory)
        except OSError as exc:
            raise LogWriteError(describe_os_error(directory, exc, "syncing after deletion")) from None
    result.status = retention_status(directory, policy, now_ns)
    return result


def _last_time(buf: bytes, prefix: SegmentPrefix, end: int) -> int:
    records = scan_records(buf[:end], prefix.records_offset, prefix.header.first_sequence).records
    return max((r.time_ns for r in records), default=prefix.header.created_ns)


class RetentionWorker(threading.Thread):
    """Runs the retention pass every ``check_s`` and refreshes :attr:`status` every ``status_s`` (each
    reads every segment header and walks the directory), on its own thread so that they never
    delay the recorder's intake. :attr:`status` and :attr:`error` are safe to read from any thread;
    ``on_deleted`` / ``on_error`` are called from this thread (``on_error`` once per new failure)."""

    def __init__(
        self,
        directory: Path,
        signing_key: ed25519.Ed25519PrivateKey,
        robot_id: str,
        policy: RetentionPolicy,
        check_s: float,
        status_s: float = 10.0,
        on_deleted: Callable[[RetentionResult], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if not (math.isfinite(check_s) and check_s > 0 and math.isfinite(status_s) and status_s > 0):
            raise ValueError("retention worker: check_s and status_s must be positive")
        super().__init__(name="blackbox-retention", daemon=True)
        self._directory = directory
        self._signing_key = signing_key
        self._robot_id = robot_id
        self._policy = policy
        self._check_s = check_s
        self._status_s = status_s
        self._on_deleted = on_deleted
        self._on_error = on_error
        self._clock = clock
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._status: RetentionStatus | None = None
        self._error = ""

    @property
    def status(self) -> RetentionStatus | None:
        """The latest retention status (None until the first pass has run)."""
        with self._lock:
            return self._status

    @property
    def error(self) -> str:
        """Why the latest pass failed, or ""."""
        with self._lock:
            return self._error

    def run(self) -> None:
        next_check = time.monotonic() + self._check_s
        next_status = time.monotonic()  # a first status at once
        while not self._stop_event.is_set():
            now = time.monotonic()
            if now >= next_check:
                next_check = now + self._check_s
                next_status = now + self._status_s
                self._pass(enforce=True)
            elif now >= next_status:
                next_status = now + self._status_s
                self._pass(enforce=False)
            self._stop_event.wait(max(0.0, min(next_check, next_status) - time.monotonic()))

    def _pass(self, enforce: bool) -> None:
        try:
            if enforce:
                result = enforce_retention(self._directory, self._signing_key, self._robot_id, self._policy,
                                           self._clock())
                status = result.status
                if result.deleted and self._on_deleted is not None:
                    self._on_deleted(result)
            else:
                status = retention_status(self._directory, self._policy, self._clock())
        except BlackBoxError as exc:
            with self._lock:
                new = str(exc) != self._error
                self._error = str(exc)
            if new and self._on_error is not None:
                self._on_error(str(exc))
            return
        with self._lock:
            self._status = status
            self._error = ""

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()


def parse_size(text: str) -> int:
    """'20GiB', '500MB', '1048576' -> bytes; ValueError with the offending text."""
    units = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
             "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
    stripped = text.strip().lower().replace(" ", "")
    number = stripped.rstrip("kmgtib")
    unit = stripped[len(number):]
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r}: not a size like '20GiB' or '500MB'") from None
    if unit not in units or not math.isfinite(value) or value < 0:
        raise ValueError(f"{text!r}: not a size like '20GiB' or '500MB'")
    return int(value * units[unit])

