"""Decrypt a black-box log with an auditor (or the robot's own) X25519 key and export entries as
JSON Lines. Serialized ROS messages are decoded to dicts when their type is importable (rclpy is
imported lazily, here only); otherwise the CDR bytes are exported as base64 with a note."""

from __future__ import annotations

import array
import base64
import datetime as dt
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ftrobot_guard.blackbox.errors import BlackBoxError, FormatError, KeyMismatchError
from ftrobot_guard.blackbox.record_format import Entry, EntryKind, RecordType, SegmentPrefix, Tier
from ftrobot_guard.blackbox.recovery import read_prefix
from ftrobot_guard.blackbox.segment_reader import (
    GapKind,
    RecordDecryptError,
    decrypt_entries,
    list_segment_files,
    open_data_key,
    read_file_bytes,
    scan_records,
)
from ftrobot_guard.keys import fingerprint
from ftrobot_guard.message_types import MessageTypeError, import_message_type


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
    prefixes: list[tuple[Path, SegmentPrefix]] = []
    for path in list_segment_files(directory):
        try:
            prefixes.append((path, read_prefix(path)))
        except (FormatError, BlackBoxError) as exc:
            outcome.problems.append(f"{path.name}: skipped: {exc}")
    prefixes.sort(key=lambda item: (item[1].header.segment_index, item[1].header.created_ns))
    outcome.segments_total = len(prefixes)
    total = sum(p.stat().st_size for p, _ in prefixes) or 1
    done = 0
    seen_ids: set[str] = set()
    key_errors: list[str] = []
    for path, prefix in prefixes:
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


class MessageDecoder:
    """Turns CDR bytes into plain dicts when the message type is importable (cached per type)."""

    def __init__(self) -> None:
        self._types: dict[str, Any] = {}
        self._deserialize: Callable[[bytes, Any], Any] | None = None
        self._unavailable = ""
        try:
            from rclpy.serialization import deserialize_message  # lazy: keeps the core free of rclpy
        except ImportError as exc:
            self._unavailable = f"rclpy not importable ({exc})"
        else:
            self._deserialize = deserialize_message

    def decode(self, type_name: str, data: bytes) -> tuple[dict[str, Any] | None, str]:
        """(message dict, "") or (None, why not)."""
        if self._deserialize is None:
            return None, self._unavailable
        if type_name not in self._types:
            try:
                self._types[type_name] = import_message_type(type_name)
            except MessageTypeError as exc:
                self._types[type_name] = str(exc)
        cls = self._types[type_name]
        if isinstance(cls, str):
            return None, f"type not importable: {cls}"
        try:
            message = self._deserialize(data, cls)
        except Exception as exc:  # rclpy raises plain Exception subclasses for bad CDR
            return None, f"CDR bytes do not decode as {type_name}: {exc}"
        return message_to_dict(message), ""


def message_to_dict(message: Any) -> Any:
    """Plain JSON-able form of a ROS message (recursively; arrays become lists)."""
    if hasattr(message, "get_fields_and_field_types"):
        return {name: message_to_dict(getattr(message, name)) for name in message.get_fields_and_field_types()}
    if isinstance(message, (list, tuple)):
        return [message_to_dict(v) for v in message]
    if isinstance(message, array.array):
        return message.tolist()
    if isinstance(message, (bytes, bytearray)):
        return list(message)
    if hasattr(message, "tolist"):  # numpy arrays
        return message.tolist()
    if isinstance(message, float) and not math.isfinite(message):
        return str(message)
    return message


def _iso(time_ns: int) -> str:
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def entry_to_json(item: ExportedEntry, decoder: MessageDecoder | None) -> dict[str, Any]:
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
    decoded, why = decoder.decode(entry.type_name, entry.data) if decoder is not None else (None, "decoding disabled")
    if decoded is not None:
        out["message"] = decoded
    else:
        out["data_base64"] = base64.b64encode(entry.data).decode("ascii")
        out["note"] = f"raw CDR bytes: {why}"
    return out


def parse_time(text: str, option: str) -> int:
    """ISO 8601 date/time (naive = UTC) to ns since the epoch; ValueError names the option."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{option} {text!r}: not an ISO 8601 time like 2026-05-01T12:00:00Z") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
