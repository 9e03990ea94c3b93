"""Retention and disk budget: keep at least ``retention_days`` (≥ 183, the regulation's six months),
delete the oldest closed segments beyond the budget only when they are older than that, and leave a
signed deletion manifest so the rest of the log still verifies. :func:`retention_status` gives the
level (OK / WARN / ERROR) the recorder turns into /diagnostics, well before the budget is hit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.blackbox.deletion_manifest import DeletedSegment, write_deletion_manifest
from ftrobot_guard.blackbox.errors import BlackBoxError, FormatError, LogWriteError
from ftrobot_guard.blackbox.record_format import SegmentPrefix
from ftrobot_guard.blackbox.recovery import read_prefix, walk_valid_records
from ftrobot_guard.blackbox.segment_reader import (
    directory_size,
    list_segment_files,
    read_file_bytes,
    scan_records,
    sidecar_wrap_path,
)
from ftrobot_guard.blackbox.segment_writer import describe_os_error, fsync_directory

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


def _headers(directory: Path) -> list[tuple[Path, SegmentPrefix]]:
    found = []
    for path in list_segment_files(directory):
        try:
            found.append((path, read_prefix(path)))
        except (FormatError, BlackBoxError):
            continue
    found.sort(key=lambda item: item[1].header.segment_index)
    return found


def retention_status(
    directory: Path, policy: RetentionPolicy, now_ns: int, bytes_per_day: float | None = None
) -> RetentionStatus:
    """How full the budget is and whether it can hold the retention period at the current rate."""
    headers = _headers(directory)
    used = directory_size(directory)
    oldest = headers[0][1].header.created_ns if headers else now_ns
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
    headers = _headers(directory)
    log_id = headers[-1][1].header.log_id if headers else ""
    for path, prefix in headers[:-1]:  # the newest segment is the one being written
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

