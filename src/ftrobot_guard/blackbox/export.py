"""Decrypt a black-box log with an auditor (or the robot's own) X25519 key and export entries as
JSON Lines. Serialized ROS messages are decoded by a :class:`MessageDecoder` the caller supplies
(the CLI passes the rclpy-based one from ``ftrobot_guard.ros.message_types``; this package never
imports ROS); what it cannot decode is exported as base64 CDR bytes with its reason as a note."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ftrobot_guard.blackbox.errors import BlackBoxError, KeyMismatchError
from ftrobot_guard.blackbox.record_format import Entry, EntryKind, RecordType, Tier
from ftrobot_guard.blackbox.segment_reader import (
    GapKind,
    RecordDecryptError,
    decrypt_entries,
    list_segments,
    open_data_key,
    read_file_bytes,
    scan_records,
)
from ftrobot_guard.trust.keys import fingerprint


@dataclass(frozen=True)
class ExportFilter:
    since_ns: int | None = None
    until_ns: int | None = None
    topics: frozenset[str] = frozenset()

    def accepts(self, entry: Entry) -> bool:
        if self.since_ns is not None and entry.time_ns < self.since_ns:
            return False
        if self.until_ns is not None and entry.time_ns > self.until_ns:
            return False
        return not self.topics or _norm_topic(entry.topic) in self.topics


def _norm_topic(topic: str) -> str:
    return topic.lstrip("/")


def make_filter(since_ns: int | None, until_ns: int | None, topics: list[str] | None) -> ExportFilter:
    return ExportFilter(since_ns, until_ns, frozenset(_norm_topic(t) for t in topics or []))


@dataclass(frozen=True)
class ExportedEntry:
    segment_index: int
    segment_id: str
    sequence: int
    entry: Entry


@dataclass
class ExportOutcome:
    segments_opened: int = 0
    segments_total: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)


def iter_entries(
    directory: Path,
    private_key: x25519.X25519PrivateKey,
    selection: ExportFilter,
    outcome: ExportOutcome,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[ExportedEntry]:
    """Yield the selected entries in log order; problems (segments the key cannot open, records
    that fail authentication) are collected in ``outcome.problems``. Raises KeyMismatchError when
    the key opens no segment at all."""
    directory = Path(directory)
    listing = list_segments(directory)
    for path, exc in listing.unreadable:
        outcome.problems.append(f"{path.name}: skipped: {exc}")
    prefixes = listing.segments
    outcome.segments_total = len(prefixes)
    total = sum(item.path.stat().st_size for item in prefixes) or 1
    done = 0
    seen_ids: set[str] = set()
    key_errors: list[str] = []
    for item in prefixes:
        path, prefix = item.path, item.prefix
        header = prefix.header
        if header.segment_id in seen_ids:
            outcome.problems.append(f"{path.name}: duplicate of segment {header.segment_id}; skipped")
            continue
        seen_ids.add(header.segment_id)
        try:
            data_key = open_data_key(directory, prefix, private_key)
        except (KeyMismatchError, BlackBoxError) as exc:
            key_errors.append(f"{path.name}: {exc}")
            continue
        outcome.segments_opened += 1
        aead = AESGCM(data_key)
        buf = read_file_bytes(path)
        scan = scan_records(buf, prefix.records_offset, header.first_sequence)
        for gap in scan.gaps:
            kind = "torn tail" if gap.kind is GapKind.TORN_TAIL else "corrupt bytes"
            outcome.problems.append(f"{path.name}: {kind}: {gap.length} bytes at byte {gap.offset} skipped")
        for record in scan.records:
            if record.record_type != RecordType.DATA:
                continue
            try:
                entries = decrypt_entries(aead, prefix, record)
            except RecordDecryptError as exc:
                outcome.problems.append(f"{path.name}: {exc}")
                continue
            for entry in entries:
                if selection.accepts(entry):
                    outcome.entries += 1
                    yield ExportedEntry(header.segment_index, header.segment_id, record.sequence, entry)
        done += len(buf)
        if progress is not None:
            progress(done, total)
    if prefixes and outcome.segments_opened == 0:
        raise KeyMismatchError(
            f"key {fingerprint(private_key.public_key())} opens none of the {len(prefixes)} segments in {directory}"
            f" (wrong key or wrong robot's log); first: {key_errors[0]}"
        )
    outcome.problems.extend(key_errors)


class MessageDecoder(Protocol):
    """Decodes one serialized message: its type name (``sensor_msgs/msg/JointState``) and CDR bytes
    to a plain JSON-able dict, or a one-line reason why it cannot (exported as the entry's note)."""

    def __call__(self, type_name: str, data: bytes) -> dict[str, Any] | str: ...


def _iso(time_ns: int) -> str:
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def entry_to_json(item: ExportedEntry, decoder: MessageDecoder | None) -> dict[str, Any]:
    """One JSON Lines object of the export; ``decoder`` None exports every message as base64 CDR."""
    entry = item.entry
    out: dict[str, Any] = {
        "time": _iso(entry.time_ns),
        "time_ns": entry.time_ns,
        "segment": item.segment_index,
        "sequence": item.sequence,
        "topic": entry.topic,
        "type": entry.type_name,
        "guardian": entry.guardian,
        "tier": Tier(entry.tier).name,
        "kind": EntryKind(entry.kind).name,
    }
    if entry.kind == EntryKind.NOTICE:
        try:
            out["notice"] = json.loads(entry.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            out["data_base64"] = base64.b64encode(entry.data).decode("ascii")
        return out
    decoded = decoder(entry.type_name, entry.data) if decoder is not None else "decoding disabled"
    if isinstance(decoded, dict):
        out["message"] = decoded
    else:
        out["data_base64"] = base64.b64encode(entry.data).decode("ascii")
        out["note"] = f"raw CDR bytes: {decoded}"
    return out


def parse_time(text: str, option: str) -> int:
    """ISO 8601 date/time (naive = UTC) to ns since the epoch; ValueError names the option."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{option} {text!r}: not an ISO 8601 time like 2026-05-01T12:00:00Z") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
