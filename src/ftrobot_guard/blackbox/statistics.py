"""`ftrobot log stat`: what a log holds, without the decryption key."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftrobot_guard.blackbox.retention import DAY_NS, RetentionPolicy, retention_status
from ftrobot_guard.blackbox.segment_reader import directory_size
from ftrobot_guard.blackbox.verification import ProgressCallback, VerificationReport, iso_time, verify_log


@dataclass(frozen=True)
class LogStatistics:
    report: VerificationReport
    used_bytes: int
    first_ns: int
    last_ns: int
    records: int
    data_records: int
    checkpoints: int

    @property
    def span_days(self) -> float:
        return max(0.0, (self.last_ns - self.first_ns) / DAY_NS)

    @property
    def bytes_per_day(self) -> float | None:
        return self.used_bytes / self.span_days if self.span_days >= 1 / 24 else None

    def as_dict(self, policy: RetentionPolicy, now_ns: int) -> dict[str, Any]:
        status = retention_status(self.report.directory, policy, now_ns, self.bytes_per_day)
        return {
            "directory": str(self.report.directory),
            "robot_id": self.report.robot_id,
            "robot_key": self.report.robot_key_fingerprint,
            "segments": len(self.report.segments),
            "deleted_segments": self.report.deleted_segments,
            "records": self.records,
            "data_records": self.data_records,
            "checkpoints": self.checkpoints,
            "first_sequence": self.report.segments[0].first_sequence if self.report.segments else 0,
            "last_sequence": self.report.segments[-1].last_sequence if self.report.segments else 0,
            "first_time": iso_time(self.first_ns) if self.report.segments else "",
            "last_time": iso_time(self.last_ns) if self.report.segments else "",
            "used_bytes": self.used_bytes,
            "bytes_per_day": self.bytes_per_day,
            "days_per_gib": (2**30 / self.bytes_per_day) if self.bytes_per_day else None,
            "retention": status.as_dict() | {"message": status.message},
            "integrity": "OK" if self.report.clean else f"{len(self.report.errors)} errors,"
                         f" {len(self.report.warnings)} warnings (run ftrobot log verify)",
        }

    def render(self, policy: RetentionPolicy, now_ns: int | None = None) -> str:
        info = self.as_dict(policy, now_ns or time.time_ns())
        lines = [f"black-box log {info['directory']}: robot {info['robot_id']} (key {info['robot_key']})",
                 f"  segments: {info['segments']} (+{info['deleted_segments']} deleted by retention)",
                 f"  records: {info['records']} ({info['data_records']} data, {info['checkpoints']} checkpoints),"
                 f" sequence {info['first_sequence']}..{info['last_sequence']}",
                 f"  time: {info['first_time']} .. {info['last_time']} ({self.span_days:.2f} days)",
                 f"  size: {self.used_bytes / 2**20:.2f} MiB"]
        if self.bytes_per_day:
            lines.append(f"  rate: {self.bytes_per_day / 2**20:.2f} MiB/day, {info['days_per_gib']:.1f} days per GiB")
        retention = info["retention"]
        lines.append(f"  retention: {retention['level']}: {retention['message']}")
        lines.append(f"  integrity: {info['integrity']}")
        for segment in self.report.segments:
            state = "closed" if segment.closed else "open"
            lines.append(f"  [{segment.index:>6}] {segment.path.name}"
                         f"  seq {segment.first_sequence}..{segment.last_sequence}"
                         f"  {segment.size / 1024:.0f} KiB  {iso_time(segment.created_ns)}  {state}")
        return "\n".join(lines)


def log_statistics(directory: Path, progress: ProgressCallback | None = None) -> LogStatistics:
    report = verify_log(directory, progress=progress)
    segments = report.segments
    return LogStatistics(
        report=report,
        used_bytes=directory_size(directory),
        first_ns=min((s.created_ns for s in segments), default=0),
        last_ns=max((s.last_time_ns for s in segments), default=0),
        records=sum(s.records for s in segments),
        data_records=sum(s.data_records for s in segments),
        checkpoints=sum(s.checkpoints for s in segments),
    )
