"""What a power cut can do to a black-box segment, and whether bytes that are not valid records fit it.

The writer fsyncs a new segment's header before any record, appends sealed records and fsyncs every
``fsync_interval_ms``; a CLOSE record is synced before the segment counts as closed, and nothing is
ever appended after it (docs/blackbox-format.md §7). So a power cut can leave only a torn or
missing tail of what was sealed in the last interval, at the end of the newest segment. Bytes that
are not valid records are explained by a power cut only when

- nothing valid follows them: no complete, CRC-valid record (a torn write is the last write);
- the segment was not closed before them;
- the records they still show claim times spanning at most the fsync interval plus a margin.

Anything else is damage or tampering: recovery leaves it as it is, and verification reports an ERROR.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftrobot_guard.blackbox.record_format import (
    ParsedRecord,
    RecordType,
    find_next_record,
    parse_record_at,
    peek_frame_header,
)

POWER_CUT_MARGIN_NS = 50_000_000  # scheduling and I/O latency allowed on top of the fsync interval
DEFAULT_FSYNC_INTERVAL_MS = 100  # the writer's default, for a header that does not say
UNKNOWN_SEQUENCE = 0  # sequence numbers start at 1
_RESYNC_BEFORE = 256  # look this far below the expected sequence for complete records
_RESYNC_AFTER = 4096  # and this far above it


def power_cut_bound_ns(fsync_interval_ms: int) -> int:
    """The longest stretch of recording a power cut can lose under this fsync interval."""
    interval = fsync_interval_ms if fsync_interval_ms > 0 else DEFAULT_FSYNC_INTERVAL_MS
    return interval * 1_000_000 + POWER_CUT_MARGIN_NS


@dataclass(frozen=True)
class TailJudgement:
    """Whether a power cut explains the bytes from some offset to the end of a segment."""

    explained: bool
    reason: str  # why a power cut does not explain them ("" when it does)
    complete_records: tuple[ParsedRecord, ...]  # CRC-valid records among the bytes
    span_ns: int  # how far apart in time the records the bytes still show were sealed

    @property
    def sequences(self) -> list[int]:
        """[first, last] sequence of the complete records, or []."""
        seqs = [r.sequence for r in self.complete_records]
        return [min(seqs), max(seqs)] if seqs else []


def judge_tail(
    buf: bytes, start: int, expected_sequence: int, fsync_interval_ms: int, after_close: bool
) -> TailJudgement:
    """Judge ``buf[start:]``, the bytes after the last valid record of a segment (or a quarantined
    copy of them, ``start`` = 0). ``expected_sequence`` is the sequence the next record would carry
    (UNKNOWN_SEQUENCE if not known); ``after_close``: the valid records end with a CLOSE."""
    complete = _complete_records(buf, start, expected_sequence)
    times = [r.time_ns for r in complete] + _claimed_times(buf, start, expected_sequence)
    span = max(times) - min(times) if times else 0
    bound = power_cut_bound_ns(fsync_interval_ms)
    reason = ""
    if after_close:
        reason = ("bytes after the segment's signed CLOSE record: a closed segment is on disk before any power"
                  " cut, and the writer never appends after CLOSE")
    elif complete:
        first, last = min(r.sequence for r in complete), max(r.sequence for r in complete)
        closing = any(r.record_type == RecordType.CLOSE for r in complete)
        what = (f"{len(complete)} complete record{'s' if len(complete) > 1 else ''} (sequence"
                f"{'s' if first != last else ''} {first}{f'..{last}' if first != last else ''})")
        reason = (f"{what}, the segment's signed CLOSE record among them, follow the damaged bytes at byte {start}:"
                  " a closed segment was on disk before any power cut" if closing else
                  f"{what} follow the damaged bytes at byte {start}: a power cut leaves nothing valid after a"
                  " torn write")
    elif span > bound:
        reason = (f"the damaged records claim times {span / 1e6:.0f} ms apart, more than a power cut can lose"
                  f" (the writer syncs every {fsync_interval_ms or DEFAULT_FSYNC_INTERVAL_MS} ms)")
    return TailJudgement(not reason, reason, tuple(complete), span)


def _complete_records(buf: bytes, start: int, expected: int) -> list[ParsedRecord]:
    """CRC-valid records at or after ``start``: the one at ``start`` whatever its sequence, then
    those found by resynchronising near the expected sequence numbers."""
    found: list[ParsedRecord] = []
    first = parse_record_at(buf, start)
    offset = start
    if isinstance(first, ParsedRecord):
        found.append(first)
        offset = first.offset + first.length
        expected = max(expected, first.sequence + 1)
    if expected == UNKNOWN_SEQUENCE:
        low, high = 1, 1 << 32
    else:
        low, high = max(1, expected - _RESYNC_BEFORE), expected + _RESYNC_AFTER
    while offset < len(buf):
        record = find_next_record(buf, offset, low, high)
        if record is None:
            break
        found.append(record)
        offset = record.offset + record.length
        low, high = record.sequence + 1, record.sequence + 1 + _RESYNC_AFTER
    return found


def _claimed_times(buf: bytes, start: int, expected: int) -> list[int]:
    """Seal times the records from ``start`` claim in their headers, record after record while the
    headers are plausible (in sequence), whether or not the records are complete or CRC-valid."""
    times: list[int] = []
    offset = start
    while offset < len(buf):
        header = peek_frame_header(buf, offset)
        if header is None or (expected != UNKNOWN_SEQUENCE and header.sequence != expected):
            break
        times.append(header.time_ns)
        offset += header.length
        expected = header.sequence + 1
    return times
