"""Crash recovery when a writer opens a log: find the last valid record of the newest segment and
decide whether a power cut explains what follows it (:mod:`.power_cut`).

- A torn tail a power cut explains: the bytes after the last valid record are copied to
  quarantine/ (evidence is never deleted), the file is cut there, and the next segment's signed
  header says exactly what was dropped (kind TORN_TAIL).
- Damage a power cut does not explain (bytes after a CLOSE, valid records after the damage, a loss
  longer than the fsync interval): nothing is moved or cut. The file stays as it is, the next
  segment continues after its last record and records the damage (kind DAMAGED), and
  ``ftrobot log verify`` reports it as an ERROR.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.blackbox.checkpoint_check import check_checkpoint
from ftrobot_guard.blackbox.durable_files import describe_os_error, fsync_directory, write_new_file
from ftrobot_guard.blackbox.errors import BlackBoxError, KeyMismatchError, LogWriteError
from ftrobot_guard.blackbox.power_cut import judge_tail
from ftrobot_guard.blackbox.record_format import (
    ZERO_HEAD,
    RecordProblem,
    RecordType,
    RecoveryNote,
    SegmentPrefix,
    TornHeaderError,
    chain_next,
    chain_start,
    header_signature_valid,
    parse_record_at,
)
from ftrobot_guard.blackbox.segment_reader import QUARANTINE_DIR, ListedSegment, list_segments, read_file_bytes
from ftrobot_guard.blackbox.verification import Severity, analyze_segment
from ftrobot_guard.trust.keys import fingerprint


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
    damage: str = ""  # one line when the newest segment holds damage no power cut explains ("" otherwise)


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
    """Follow records while they are complete, CRC-valid, in sequence and (checkpoints) keep the
    rules of :mod:`.checkpoint_check`."""
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
            check = check_checkpoint(found, header, expected - 1, head, public_key)
            if not check.ok:
                reason = f"checkpoint at byte {offset}: {check.describe()}"
                break
            closed = found.record_type == RecordType.CLOSE
        head = chain_next(head, found.raw)
        expected += 1
        offset += found.length
    return ValidPrefix(end=offset, last_sequence=expected - 1, head=head, closed=closed, stop_reason=reason)


def _note(
    kind: str, segment_id: str, last_sequence: int, head: bytes, valid_bytes: int, dropped_bytes: int = 0,
    quarantine_file: str = "",
) -> RecoveryNote:
    """The note for the next segment's signed header. It never lists dropped complete records: a
    tail holding any is damage, which is not dropped."""
    return RecoveryNote(kind=kind, segment_id=segment_id, last_valid_sequence=last_sequence,
                        last_valid_head=head.hex(), valid_bytes=valid_bytes, dropped_bytes=dropped_bytes,
                        dropped_offset=valid_bytes, dropped_records=0, quarantine_file=quarantine_file)


def _quarantine(directory: Path, source: Path, data: bytes, suffix: str) -> Path:
    qdir = directory / QUARANTINE_DIR
    try:
        qdir.mkdir(exist_ok=True)
    except OSError as exc:
        raise LogWriteError(describe_os_error(qdir, exc, "quarantining damaged bytes")) from None
    target = qdir / f"{source.name}.{suffix}"
    counter = 1
    while target.exists():
        target = qdir / f"{source.name}.{suffix}.{counter}"
        counter += 1
    write_new_file(target, data, 0o640, "quarantining damaged bytes")
    return target


def recover_log(
    directory: Path, public_key: ed25519.Ed25519PublicKey, robot_id: str
) -> RecoveryOutcome:
    """Prepare ``directory`` for appending: check it is this robot's log, set aside a torn tail a
    power cut explains, and leave anything else as it is (reported, never rewritten)."""
    listing = list_segments(directory)
    own_key = public_key.public_bytes_raw().hex()
    for item in listing.segments:
        header = item.prefix.header
        if header.robot_key != own_key or header.robot_id != robot_id:
            raise KeyMismatchError(
                f"{directory}: holds the log of robot {header.robot_id} (key"
                f" {fingerprint(ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(header.robot_key)))}),"
                f" not of robot {robot_id} (key {fingerprint(public_key)}); refusing to append"
            )
        if not header_signature_valid(public_key, item.prefix.header_json, item.prefix.signature):
            raise BlackBoxError(f"{item.path}: segment header signature invalid; run `ftrobot log verify {directory}`")
    outcome = RecoveryOutcome(tail=None, note=None)
    # other unreadable headers are reported by `ftrobot log verify`; the writer continues after the valid segments
    for path in (path for path, exc in listing.unreadable if isinstance(exc, TornHeaderError)):
        _set_aside_torn_header(directory, path, outcome)
    if listing.segments:
        _recover_newest(directory, listing.segments[-1], public_key, outcome)
    return outcome


def _set_aside_torn_header(directory: Path, path: Path, outcome: RecoveryOutcome) -> None:
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
    outcome.note = _note("TORN_HEADER", "", 0, ZERO_HEAD, 0, len(data), str(target.relative_to(directory)))


def _recover_newest(
    directory: Path, newest: ListedSegment, public_key: ed25519.Ed25519PublicKey, outcome: RecoveryOutcome
) -> None:
    path, prefix = newest.path, newest.prefix
    header = prefix.header
    buf = read_file_bytes(path)
    valid = walk_valid_records(buf, prefix, public_key)
    outcome.tail = LogTail(header.log_id, header.segment_index, header.segment_id, valid.last_sequence, valid.head)
    if valid.end == len(buf):
        if not valid.closed:
            outcome.note = _note("UNCLOSED", header.segment_id, valid.last_sequence, valid.head, valid.end)
            outcome.messages.append(
                f"{path.name}: not closed (writer stopped without closing); all {valid.last_sequence}"
                " records kept, nothing dropped"
            )
        return
    judgement = judge_tail(buf, valid.end, valid.last_sequence + 1, header.fsync_interval_ms, valid.closed)
    if not judgement.explained:
        _leave_damage(directory, path, prefix, buf, public_key, valid, judgement.reason, outcome)
        return
    dropped = buf[valid.end :]
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
    outcome.note = _note("TORN_TAIL", header.segment_id, valid.last_sequence, valid.head, valid.end, len(dropped),
                         str(target.relative_to(directory)))
    outcome.messages.append(
        f"{path.name}: torn tail (power cut): kept records up to sequence {valid.last_sequence}"
        f" (byte {valid.end}); dropped {len(dropped)} bytes ({valid.stop_reason}), no complete record among"
        f" them; moved to {target.relative_to(directory)}"
    )


def _leave_damage(
    directory: Path,
    path: Path,
    prefix: SegmentPrefix,
    buf: bytes,
    public_key: ed25519.Ed25519PublicKey,
    valid: ValidPrefix,
    reason: str,
    outcome: RecoveryOutcome,
) -> None:
    """Damage no power cut explains: keep the file as it is and continue the chain after its last
    record, the way `ftrobot log verify` follows it (signed checkpoints bridge the damage)."""
    header = prefix.header
    summary, findings = analyze_segment(ListedSegment(path, prefix), buf, public_key, is_last=True)
    outcome.tail = LogTail(header.log_id, header.segment_index, header.segment_id, summary.last_sequence,
                           summary.final_head)
    # the kept part is the whole file: it ends at its last record; the damage starts at valid.end
    outcome.note = _note("DAMAGED", header.segment_id, summary.last_sequence, summary.final_head, valid.end)
    outcome.damage = (
        f"{path.name}: damaged at byte {valid.end} ({valid.stop_reason}), not by a power cut: {reason}; left as it"
        f" is (nothing moved or cut); recording continues after sequence {summary.last_sequence}; run"
        f" `ftrobot log verify {directory}`"
    )
    outcome.messages.append(outcome.damage)
    outcome.messages.extend(f.render() for f in findings if f.severity is Severity.ERROR)
