"""Crash recovery when a writer opens a log: find the last valid record, keep everything before it,
move the rest to quarantine/ (evidence is never deleted), and say exactly what was dropped.

The note is stored in the signed header of the next segment, so the verifier sees it too."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.blackbox.errors import BlackBoxError, FormatError, KeyMismatchError, LogWriteError
from ftrobot_guard.blackbox.record_format import (
    MAGIC,
    MAX_HEADER_LEN,
    SIGNATURE_LEN,
    Checkpoint,
    ParsedRecord,
    RecordProblem,
    RecordType,
    RecoveryNote,
    SegmentPrefix,
    TornHeaderError,
    chain_next,
    chain_start,
    find_next_record,
    header_signature_valid,
    parse_record_at,
    parse_segment_prefix,
)
from ftrobot_guard.blackbox.segment_reader import QUARANTINE_DIR, list_segment_files, read_file_bytes
from ftrobot_guard.blackbox.segment_writer import describe_os_error, fsync_directory
from ftrobot_guard.keys import fingerprint

_PREFIX_HEAD = struct.Struct(">8sHI")


@dataclass(frozen=True)
class LogTail:
    """Where the next segment continues the chain."""

    log_id: str
    segment_index: int
    segment_id: str
    last_sequence: int
    head: bytes


@dataclass
class RecoveryOutcome:
    tail: LogTail | None  # None: no segment yet, start a new log
    note: RecoveryNote | None  # None: the last segment was closed cleanly
    messages: list[str] = field(default_factory=list)


def read_prefix(path: Path) -> SegmentPrefix:
    """Parse only the header of a segment file (no need to read the records)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_PREFIX_HEAD.size)
            if len(head) == _PREFIX_HEAD.size and head[:8] == MAGIC:
                header_len = _PREFIX_HEAD.unpack(head)[2]
                head += handle.read(min(header_len, MAX_HEADER_LEN) + SIGNATURE_LEN)
    except OSError as exc:
        raise BlackBoxError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_segment_prefix(head, str(path))


@dataclass(frozen=True)
class ValidPrefix:
    """The longest valid run of records at the start of a segment."""

    end: int  # byte offset after the last valid record
    last_sequence: int
    head: bytes
    closed: bool
    stop_reason: str  # why the walk stopped before the end of the file ("" when it did not)


def walk_valid_records(
    buf: bytes, prefix: SegmentPrefix, public_key: ed25519.Ed25519PublicKey
) -> ValidPrefix:
    """Follow records while they are complete, CRC-valid, in sequence and (checkpoints) signed and
    consistent with the chain."""
    header = prefix.header
    head = chain_start(bytes.fromhex(header.prev_chain_head), prefix.header_json, prefix.signature)
    expected = header.first_sequence
    offset = prefix.records_offset
    closed = False
    reason = ""
    while offset < len(buf):
        if closed:
            reason = f"bytes after the CLOSE record at byte {offset}"
            break
        found = parse_record_at(buf, offset)
        if isinstance(found, RecordProblem):
            reason = f"{found.value} record at byte {offset}"
            break
        if found.sequence != expected:
            reason = f"record at byte {offset} has sequence {found.sequence}, expected {expected}"
            break
        if found.record_type in (RecordType.CHECKPOINT, RecordType.CLOSE):
            problem = _checkpoint_problem(found, header.segment_id, header.robot_id, expected - 1, head, public_key)
            if problem:
                reason = f"checkpoint at byte {offset}: {problem}"
                break
            closed = found.record_type == RecordType.CLOSE
        head = chain_next(head, found.raw)
        expected += 1
        offset += found.length
    return ValidPrefix(end=offset, last_sequence=expected - 1, head=head, closed=closed, stop_reason=reason)


def _checkpoint_problem(
    record: ParsedRecord,
    segment_id: str,
    robot_id: str,
    covered: int,
    head: bytes,
    public_key: ed25519.Ed25519PublicKey,
) -> str:
    try:
        cp = Checkpoint.decode(record.payload, "checkpoint")
    except FormatError as exc:
        return str(exc)
    if cp.segment_id != segment_id or cp.robot_id != robot_id:
        return "names another segment or robot"
    if cp.sequence != covered:
        return f"covers sequence {cp.sequence}, expected {covered}"
    if cp.chain_head != head:
        return "chain head differs from the records before it"
    if not cp.signature_valid(public_key):
        return "signature invalid"
    return ""


def _quarantine(directory: Path, source: Path, data: bytes, suffix: str) -> Path:
    qdir = directory / QUARANTINE_DIR
    try:
        qdir.mkdir(exist_ok=True)
        target = qdir / f"{source.name}.{suffix}"
        counter = 1
        while target.exists():
            target = qdir / f"{source.name}.{suffix}.{counter}"
            counter += 1
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_directory(qdir)
    except OSError as exc:
        raise LogWriteError(describe_os_error(qdir, exc, "quarantining damaged bytes")) from None
    return target


def recover_log(
    directory: Path, public_key: ed25519.Ed25519PublicKey, robot_id: str
) -> RecoveryOutcome:
    """Prepare ``directory`` for appending: check it is this robot's log and repair a crashed tail."""
    own_key = public_key.public_bytes_raw().hex()
    headers: list[tuple[Path, SegmentPrefix]] = []
    torn: list[Path] = []
    for path in list_segment_files(directory):
        try:
            prefix = read_prefix(path)
        except TornHeaderError:
            torn.append(path)
            continue
        except FormatError:
            continue  # reported by `ftrobot log verify`; the writer continues after the valid segments
        header = prefix.header
        if header.robot_key != own_key or header.robot_id != robot_id:
            raise KeyMismatchError(
                f"{directory}: holds the log of robot {header.robot_id} (key"
                f" {fingerprint(ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(header.robot_key)))}),"
                f" not of robot {robot_id} (key {fingerprint(public_key)}); refusing to append"
            )
        if not header_signature_valid(public_key, prefix.header_json, prefix.signature):
            raise BlackBoxError(f"{path}: segment header signature invalid; run `ftrobot log verify {directory}`")
        headers.append((path, prefix))
    outcome = RecoveryOutcome(tail=None, note=None)
    for path in torn:
        data = read_file_bytes(path)
        target = _quarantine(directory, path, data, "torn-header")
        try:
            path.unlink()
            fsync_directory(directory)
        except OSError as exc:
            raise LogWriteError(describe_os_error(path, exc, "removing a torn segment")) from None
        outcome.messages.append(
            f"{path.name}: writer died while creating this segment ({len(data)} bytes, no record);"
            f" moved to {target.relative_to(directory)}"
        )
        outcome.note = RecoveryNote(
            kind="TORN_HEADER",
            segment_id="",
            last_valid_sequence=0,
            last_valid_head="0" * 64,
            valid_bytes=0,
            dropped_bytes=len(data),
            dropped_offset=0,
            dropped_records=0,
            quarantine_file=str(target.relative_to(directory)),
        )
    if not headers:
        return outcome
    headers.sort(key=lambda item: item[1].header.segment_index)
    path, prefix = headers[-1]
    header = prefix.header
    buf = read_file_bytes(path)
    valid = walk_valid_records(buf, prefix, public_key)
    outcome.tail = LogTail(
        log_id=header.log_id,
        segment_index=header.segment_index,
        segment_id=header.segment_id,
        last_sequence=valid.last_sequence,
        head=valid.head,
    )
    if valid.end == len(buf):
        if not valid.closed:
            outcome.note = RecoveryNote(
                kind="UNCLOSED",
                segment_id=header.segment_id,
                last_valid_sequence=valid.last_sequence,
                last_valid_head=valid.head.hex(),
                valid_bytes=valid.end,
                dropped_bytes=0,
                dropped_offset=valid.end,
                dropped_records=0,
            )
            outcome.messages.append(
                f"{path.name}: not closed (writer stopped without closing); all {valid.last_sequence}"
                " records kept, nothing dropped"
            )
        return outcome
    dropped = buf[valid.end :]
    later = _count_later_records(buf, valid.end, valid.last_sequence + 1)
    kind = "TORN_TAIL"
    target = _quarantine(directory, path, dropped, f"torn-{valid.end}")
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, valid.end)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise LogWriteError(describe_os_error(path, exc, "cutting off a torn tail")) from None
    seqs = [r.sequence for r in later]
    outcome.note = RecoveryNote(
        kind=kind,
        segment_id=header.segment_id,
        last_valid_sequence=valid.last_sequence,
        last_valid_head=valid.head.hex(),
        valid_bytes=valid.end,
        dropped_bytes=len(dropped),
        dropped_offset=valid.end,
        dropped_records=len(later),
        dropped_sequences=[min(seqs), max(seqs)] if seqs else [],
        quarantine_file=str(target.relative_to(directory)),
    )
    detail = f"; {len(later)} complete records (sequences {min(seqs)}..{max(seqs)}) among them" if seqs else ""
    outcome.messages.append(
        f"{path.name}: {kind.lower().replace('_', ' ')}: kept records up to sequence {valid.last_sequence}"
        f" (byte {valid.end}); dropped {len(dropped)} bytes ({valid.stop_reason}){detail};"
        f" moved to {target.relative_to(directory)}"
    )
    return outcome


def _count_later_records(buf: bytes, start: int, expected: int) -> list[ParsedRecord]:
    """Complete, CRC-valid records in the dropped bytes (found by resynchronising)."""
    found: list[ParsedRecord] = []
    offset = start
    low = max(1, expected - 256)
    while True:
        record = find_next_record(buf, offset, low, expected + 4096)
        if record is None or record.offset < start:
            break
        found.append(record)
        offset = record.offset + record.length
        low = record.sequence + 1
        expected = record.sequence + 1
    return found
