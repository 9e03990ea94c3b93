"""Verify a black-box log without the decryption key: integrity, order, completeness.

Checks, in order: segment headers (magic, version, structure, Ed25519 signature, robot identity,
trust anchor), the segment chain (index, previous segment id and head, sequence continuity,
deletion manifests, crash-recovery notes), every record (framing, CRC, sequence, hash chain) and
every signed checkpoint, and finally the department's witnessed heads. Each problem becomes a
:class:`Finding` naming the segment file, sequence and byte offset, with a diagnosis."""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.blackbox.checkpoint_check import CheckpointFault, check_checkpoint
from ftrobot_guard.blackbox.deletion_manifest import DeletedSegment, load_deletion_manifests
from ftrobot_guard.blackbox.errors import BlackBoxError, UnsupportedVersionError
from ftrobot_guard.blackbox.power_cut import UNKNOWN_SEQUENCE, judge_tail
from ftrobot_guard.blackbox.record_format import (
    ZERO_HEAD,
    Checkpoint,
    ParsedRecord,
    RecordType,
    RecoveryNote,
    SegmentHeader,
    TornHeaderError,
    chain_next,
    chain_start,
    header_signature_valid,
)
from ftrobot_guard.blackbox.segment_reader import (
    QUARANTINE_DIR,
    GapKind,
    ListedSegment,
    list_segments,
    read_file_bytes,
    scan_records,
)
from ftrobot_guard.blackbox.trust_anchor import TrustAnchor
from ftrobot_guard.blackbox.witnessed_heads import WitnessedHead
from ftrobot_guard.trust.keys import fingerprint

_NAME_INDEX = re.compile(r"^(\d{10})-")
MAX_FINDINGS_PER_KIND = 20


class Severity(enum.IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2


class Diagnosis(enum.StrEnum):
    """What a finding means (stable names, listed in docs/blackbox-format.md)."""

    EMPTY_LOG = "EMPTY_LOG"
    CORRUPT_HEADER = "CORRUPT_HEADER"
    UNKNOWN_VERSION = "UNKNOWN_VERSION"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNTRUSTED_KEY = "UNTRUSTED_KEY"
    UNANCHORED = "UNANCHORED"
    FOREIGN_SEGMENT = "FOREIGN_SEGMENT"
    DUPLICATE_SEGMENT = "DUPLICATE_SEGMENT"
    MISSING_SEGMENT = "MISSING_SEGMENT"
    CHAIN_BREAK = "CHAIN_BREAK"
    TRUNCATION = "TRUNCATION"
    CORRUPT_RECORD = "CORRUPT_RECORD"
    RECORD_ALTERED = "RECORD_ALTERED"
    RECORD_MISSING = "RECORD_MISSING"
    RECORD_DUPLICATED = "RECORD_DUPLICATED"
    RECORD_REORDERED = "RECORD_REORDERED"
    TORN_TAIL = "TORN_TAIL"
    UNSEALED_TAIL = "UNSEALED_TAIL"
    RECOVERED = "RECOVERED"
    DELETED_BY_RETENTION = "DELETED_BY_RETENTION"
    BAD_MANIFEST = "BAD_MANIFEST"
    WITNESS_MISMATCH = "WITNESS_MISMATCH"
    BAD_WITNESS = "BAD_WITNESS"
    QUARANTINED = "QUARANTINED"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    diagnosis: Diagnosis
    message: str
    segment: str = ""  # file name
    segment_index: int | None = None
    sequence: int | None = None
    offset: int | None = None

    def render(self) -> str:
        where = []
        if self.segment:
            where.append(self.segment)
        if self.segment_index is not None:
            where.append(f"segment {self.segment_index}")
        if self.sequence is not None:
            where.append(f"seq {self.sequence}")
        if self.offset is not None:
            where.append(f"byte {self.offset}")
        place = f" [{', '.join(where)}]" if where else ""
        return f"{self.severity.name:<7} {self.diagnosis.value}{place}: {self.message}"


@dataclass
class SegmentSummary:
    path: Path
    index: int
    segment_id: str
    first_sequence: int
    last_sequence: int
    records: int
    data_records: int
    checkpoints: int
    closed: bool
    created_ns: int
    last_time_ns: int
    size: int
    final_head: bytes
    last_checkpoint_sequence: int  # 0: none
    torn_bytes: int = 0


@dataclass
class VerificationReport:
    directory: Path
    robot_id: str = ""
    robot_key_fingerprint: str = ""
    trust: str = ""
    segments: list[SegmentSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    deleted_segments: int = 0
    heads_checked: int = 0
    heads_confirmed: int = 0

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    def diagnoses(self, severity: Severity = Severity.WARNING) -> set[Diagnosis]:
        return {f.diagnosis for f in self.findings if f.severity >= severity}

    @property
    def clean(self) -> bool:
        return not self.errors and not self.warnings

    @property
    def exit_code(self) -> int:
        return 0 if self.clean else 1

    def render(self) -> str:
        lines = [f"black-box log {self.directory}"]
        if self.robot_id:
            lines.append(f"  robot {self.robot_id}, key {self.robot_key_fingerprint}; trust: {self.trust}")
        if self.segments:
            first, last = self.segments[0], self.segments[-1]
            records = sum(s.records for s in self.segments)
            size = sum(s.size for s in self.segments)
            lines.append(
                f"  {len(self.segments)} segments (index {first.index}..{last.index}), {records} records"
                f" (sequence {first.first_sequence}..{last.last_sequence}), {size / 1048576:.1f} MiB,"
                f" {iso_time(first.created_ns)} .. {iso_time(max(s.last_time_ns for s in self.segments))}"
            )
        if self.deleted_segments:
            lines.append(f"  {self.deleted_segments} older segments deleted by retention (signed manifests)")
        if self.heads_checked:
            lines.append(f"  witnessed heads: {self.heads_checked} checked, {self.heads_confirmed} confirmed")
        counts: Counter[tuple[Severity, Diagnosis]] = Counter()
        for finding in sorted(self.findings, key=lambda f: -f.severity):
            counts[(finding.severity, finding.diagnosis)] += 1
            if counts[(finding.severity, finding.diagnosis)] <= MAX_FINDINGS_PER_KIND:
                lines.append(finding.render())
        for (severity, diagnosis), count in counts.items():
            if count > MAX_FINDINGS_PER_KIND:
                lines.append(f"{severity.name:<7} {diagnosis.value}: ... and {count - MAX_FINDINGS_PER_KIND} more")
        verdict = "OK" if self.clean else "PROBLEMS FOUND"
        lines.append(f"result: {len(self.errors)} errors, {len(self.warnings)} warnings: {verdict}")
        return "\n".join(lines)


def iso_time(time_ns: int) -> str:
    return dt.datetime.fromtimestamp(time_ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Prev:
    """End of the previous segment in the chain."""

    segment_id: str
    index: int
    last_sequence: int
    final_head: bytes
    closed: bool
    name: str


ProgressCallback = Callable[[int, int], None]


def verify_log(
    directory: Path,
    anchor: TrustAnchor | None = None,
    heads: list[WitnessedHead] | None = None,
    progress: ProgressCallback | None = None,
) -> VerificationReport:
    """Verify the log in ``directory``. Raises BlackBoxError only when the directory itself cannot
    be read; everything wrong inside the log is a finding."""
    directory = Path(directory)
    report = VerificationReport(directory=directory)
    listing = list_segments(directory)
    accepted = listing.segments
    claimed: dict[int, str] = {}  # index -> file that claimed it but could not be used
    torn_headers: list[tuple[Path, str]] = []
    for path, exc in listing.unreadable:
        if isinstance(exc, TornHeaderError):
            torn_headers.append((path, str(exc)))
            continue
        diagnosis = Diagnosis.UNKNOWN_VERSION if isinstance(exc, UnsupportedVersionError) else Diagnosis.CORRUPT_HEADER
        report.add(Finding(Severity.ERROR, diagnosis, str(exc), path.name))
        _claim(claimed, path)

    ref_key, ref_id = _reference_identity(report, accepted, anchor)
    usable: list[ListedSegment] = []
    for item in accepted:
        header = item.prefix.header
        if (header.robot_key, header.robot_id) != (ref_key_hex(ref_key), ref_id):
            report.add(Finding(
                Severity.ERROR, Diagnosis.FOREIGN_SEGMENT,
                f"segment of robot {header.robot_id} (key {_fp_hex(header.robot_key)}) spliced into the log of"
                f" robot {ref_id} (key {fingerprint(ref_key) if ref_key else '?'})",
                item.path.name, header.segment_index))
            claimed.setdefault(header.segment_index, item.path.name)
            continue
        if ref_key is None or not header_signature_valid(ref_key, item.prefix.header_json, item.prefix.signature):
            report.add(Finding(Severity.ERROR, Diagnosis.BAD_SIGNATURE,
                               "segment header signature invalid (header altered or signed by another key)",
                               item.path.name, header.segment_index))
            claimed.setdefault(header.segment_index, item.path.name)
            continue
        usable.append(item)
    log_ids = Counter(item.prefix.header.log_id for item in usable)
    ref_log = min(log_ids, key=lambda lid: (-log_ids[lid], _first_index(usable, lid))) if log_ids else ""
    for item in list(usable):
        if item.prefix.header.log_id != ref_log:
            report.add(Finding(
                Severity.ERROR, Diagnosis.FOREIGN_SEGMENT,
                f"segment belongs to another log of the same robot (log {item.prefix.header.log_id}, expected"
                f" {ref_log}): spliced or replayed from elsewhere", item.path.name, item.prefix.header.segment_index))
            claimed.setdefault(item.prefix.header.segment_index, item.path.name)
            usable.remove(item)

    deleted = _load_deleted(report, directory, ref_key, ref_id, ref_log)
    report.deleted_segments = len(deleted)
    if not accepted and not listing.unreadable and not deleted:
        report.add(Finding(Severity.ERROR, Diagnosis.EMPTY_LOG, f"no segment files (*.ftbb) in {directory}"))
        return report

    by_index: dict[int, list[ListedSegment]] = defaultdict(list)
    for item in usable:
        by_index[item.prefix.header.segment_index].append(item)
    all_indices = set(by_index) | set(deleted) | set(claimed)
    last_index = max(all_indices) if all_indices else -1
    heads_by_segment: dict[str, list[WitnessedHead]] = defaultdict(list)
    usable_heads = _usable_heads(report, heads, ref_id, ref_key)
    for head in usable_heads:
        heads_by_segment[head.segment_id].append(head)

    total_bytes = sum(item.path.stat().st_size for item in usable) or 1
    done_bytes = 0
    prev: _Prev | None = None
    heads_at: dict[str, dict[int, bytes]] = {}
    summaries_by_id: dict[str, SegmentSummary] = {}
    deleted_run: list[int] = []
    for index in range(last_index + 1):
        candidates = by_index.get(index, [])
        if not candidates:
            if index in deleted:
                gone = deleted[index]
                deleted_run.append(index)
                prev = _Prev(gone.segment_id, index, gone.last_sequence, bytes.fromhex(gone.final_head), True,
                             f"deleted segment {index}")
                continue
            if index in claimed:
                prev = None
                continue
            report.add(_missing_segment(index, prev, by_index, last_index))
            prev = None
            continue
        if deleted_run:
            report.add(_deleted_info(deleted, deleted_run))
            deleted_run = []
        chosen = _choose_candidate(report, candidates, prev)
        _check_link(report, chosen, prev, index)
        buf = read_file_bytes(chosen.path)
        summary, at = _analyze_segment(
            report, chosen, buf, ref_key, index == last_index,
            {h.sequence for h in heads_by_segment.get(chosen.prefix.header.segment_id, [])},
        )
        report.segments.append(summary)
        summaries_by_id[summary.segment_id] = summary
        heads_at[summary.segment_id] = at
        prev = _Prev(summary.segment_id, index, summary.last_sequence, summary.final_head, summary.closed,
                     chosen.path.name)
        done_bytes += len(buf)
        if progress is not None:
            progress(done_bytes, total_bytes)
    if deleted_run:
        report.add(_deleted_info(deleted, deleted_run))

    for path, message in torn_headers:
        match = _NAME_INDEX.match(path.name)
        if match and int(match.group(1)) > last_index:
            report.add(Finding(Severity.WARNING, Diagnosis.TORN_TAIL,
                               f"{message}: the writer died while creating this segment (nothing recorded in it)",
                               path.name))
        else:
            report.add(Finding(Severity.ERROR, Diagnosis.CORRUPT_HEADER, message, path.name))
    _check_witnesses(report, usable_heads, summaries_by_id, heads_at, deleted)
    _judge_quarantine(report, directory, usable, summaries_by_id)
    return report


def analyze_segment(
    item: ListedSegment, buf: bytes, public_key: ed25519.Ed25519PublicKey | None, is_last: bool
) -> tuple[SegmentSummary, list[Finding]]:
    """Records, chain and checkpoints of one segment as verification sees them: where its chain ends
    (signed checkpoints bridge damaged records) and what is wrong in it."""
    report = VerificationReport(directory=item.path.parent)
    summary, _at = _analyze_segment(report, item, buf, public_key, is_last, set())
    return summary, report.findings


def ref_key_hex(key: ed25519.Ed25519PublicKey | None) -> str:
    return key.public_bytes_raw().hex() if key is not None else ""


def _fp_hex(raw_hex: str) -> str:
    try:
        return fingerprint(ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(raw_hex)))
    except ValueError:
        return "?"


def _claim(claimed: dict[int, str], path: Path) -> None:
    match = _NAME_INDEX.match(path.name)
    if match:
        claimed.setdefault(int(match.group(1)), path.name)


def _first_index(items: list[ListedSegment], log_id: str) -> int:
    return min(i.prefix.header.segment_index for i in items if i.prefix.header.log_id == log_id)


def _reference_identity(
    report: VerificationReport, accepted: list[ListedSegment], anchor: TrustAnchor | None
) -> tuple[ed25519.Ed25519PublicKey | None, str]:
    """The robot key and id the log must be signed with."""
    votes: Counter[tuple[str, str]] = Counter()
    first_seen: dict[tuple[str, str], int] = {}
    certified_ok: set[tuple[str, str]] = set()
    for item in accepted:
        header = item.prefix.header
        pair = (header.robot_key, header.robot_id)
        if anchor is not None and anchor.cas:
            if not header.certificate:
                report.add(Finding(Severity.ERROR, Diagnosis.UNTRUSTED_KEY,
                                   "segment carries no robot certificate to check against the CA",
                                   item.path.name, header.segment_index))
                continue
            if pair not in certified_ok:
                at = dt.datetime.fromtimestamp(header.created_ns / 1e9, tz=dt.UTC)
                try:
                    key, robot_id = anchor.certify(bytes.fromhex(header.certificate), at)
                except BlackBoxError as exc:
                    report.add(Finding(Severity.ERROR, Diagnosis.UNTRUSTED_KEY, f"robot certificate refused: {exc}",
                                       item.path.name, header.segment_index))
                    continue
                if ref_key_hex(key) != header.robot_key or robot_id != header.robot_id:
                    report.add(Finding(Severity.ERROR, Diagnosis.UNTRUSTED_KEY,
                                       f"certificate of robot {robot_id} does not match the header's robot/key",
                                       item.path.name, header.segment_index))
                    continue
                certified_ok.add(pair)
        votes[pair] += 1
        first_seen.setdefault(pair, header.segment_index)
    if anchor is not None and anchor.public_key is not None:
        key = anchor.public_key
        hex_key = ref_key_hex(key)
        ids = Counter(pair[1] for pair in votes.elements() if pair[0] == hex_key)
        robot_id = anchor.robot_id or (ids.most_common(1)[0][0] if ids else "")
        report.robot_id, report.robot_key_fingerprint, report.trust = robot_id, fingerprint(key), anchor.describe()
        if not ids and accepted:
            report.add(Finding(Severity.ERROR, Diagnosis.UNTRUSTED_KEY,
                               f"no segment is signed by the trusted key {fingerprint(key)} ({anchor.source})"))
        return key, robot_id
    if not votes:
        return None, ""
    pair = min(votes, key=lambda p: (-votes[p], first_seen[p]))
    key = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(pair[0]))
    report.robot_id, report.robot_key_fingerprint = pair[1], fingerprint(key)
    if anchor is not None:
        report.trust = anchor.describe()
    else:
        report.trust = "unanchored"
        report.add(Finding(Severity.INFO, Diagnosis.UNANCHORED,
                           "signatures were checked against the key the log names itself; pass --robot-cert,"
                           " --ca or --robot-pub to prove who wrote it"))
    return key, pair[1]


def _load_deleted(
    report: VerificationReport, directory: Path, ref_key: ed25519.Ed25519PublicKey | None, ref_id: str, ref_log: str
) -> dict[int, DeletedSegment]:
    manifests, problems = load_deletion_manifests(directory, ref_key)
    for problem in problems:
        report.add(Finding(Severity.ERROR, Diagnosis.BAD_MANIFEST, problem))
    deleted: dict[int, DeletedSegment] = {}
    for manifest in manifests:
        if not manifest.signature_ok or manifest.robot_key != ref_key_hex(ref_key) or manifest.robot_id != ref_id:
            report.add(Finding(Severity.ERROR, Diagnosis.BAD_MANIFEST,
                               f"{manifest.path}: deletion manifest signature invalid or not by this robot; its"
                               " deletions are not accepted"))
            continue
        if ref_log and manifest.log_id != ref_log:
            report.add(Finding(Severity.ERROR, Diagnosis.BAD_MANIFEST,
                               f"{manifest.path}: deletion manifest of another log ({manifest.log_id})"))
            continue
        for item in manifest.deleted:
            deleted[item.segment_index] = item
    return deleted


def _deleted_info(deleted: dict[int, DeletedSegment], run: list[int]) -> Finding:
    first, last = deleted[run[0]], deleted[run[-1]]
    return Finding(Severity.INFO, Diagnosis.DELETED_BY_RETENTION,
                   f"segments {run[0]}..{run[-1]} (records {first.first_sequence}..{last.last_sequence},"
                   f" {iso_time(first.created_ns)} .. {iso_time(last.last_time_ns)}) were deleted by retention;"
                   " a signed manifest keeps their final chain head")


def _missing_segment(index: int, prev: _Prev | None, by_index: dict[int, list[ListedSegment]], last: int) -> Finding:
    following = next((by_index[i][0] for i in range(index + 1, last + 1) if by_index.get(i)), None)
    low = f"{prev.last_sequence + 1}" if prev is not None else "?"
    high = f"{following.prefix.header.first_sequence - 1}" if following is not None else "?"
    return Finding(Severity.ERROR, Diagnosis.MISSING_SEGMENT,
                   f"segment {index} is missing (no file, no deletion manifest): records {low}..{high} lost",
                   segment_index=index)


def _links(item: ListedSegment, prev: _Prev | None) -> bool:
    header = item.prefix.header
    if prev is None:
        return False
    return header.prev_segment_id == prev.segment_id and bytes.fromhex(header.prev_chain_head) == prev.final_head


def _choose_candidate(report: VerificationReport, candidates: list[ListedSegment], prev: _Prev | None) -> ListedSegment:
    if len(candidates) == 1:
        return candidates[0]
    linking = [c for c in candidates if _links(c, prev)]
    chosen = linking[0] if linking else min(candidates, key=lambda c: c.prefix.header.created_ns)
    for other in candidates:
        if other is chosen:
            continue
        same = other.prefix.header.segment_id == chosen.prefix.header.segment_id
        what = "an exact copy of" if same else "a second segment with the same index as"
        report.add(Finding(Severity.ERROR, Diagnosis.DUPLICATE_SEGMENT,
                           f"{what} {chosen.path.name} (replayed or duplicated segment); ignored",
                           other.path.name, other.prefix.header.segment_index))
    return chosen


def _check_link(report: VerificationReport, item: ListedSegment, prev: _Prev | None, index: int) -> None:
    header = item.prefix.header
    name = item.path.name
    note = header.recovery
    if index == 0:
        if header.prev_segment_id or bytes.fromhex(header.prev_chain_head) != ZERO_HEAD or header.first_sequence != 1:
            report.add(Finding(Severity.ERROR, Diagnosis.CHAIN_BREAK,
                               "segment 0 does not start a log (it names a previous segment)", name, 0))
        _report_recovery(report, item, None)
        return
    if prev is None:
        _report_recovery(report, item, None)
        return
    if header.prev_segment_id != prev.segment_id:
        report.add(Finding(Severity.ERROR, Diagnosis.CHAIN_BREAK,
                           f"segment does not continue {prev.name}: it names previous segment"
                           f" {header.prev_segment_id or '(none)'}, not {prev.segment_id}", name, index))
        return
    if bytes.fromhex(header.prev_chain_head) != prev.final_head or header.first_sequence != prev.last_sequence + 1:
        if header.first_sequence > prev.last_sequence + 1:
            report.add(Finding(Severity.ERROR, Diagnosis.TRUNCATION,
                               f"{prev.name} ends at sequence {prev.last_sequence} but this segment continues from"
                               f" sequence {header.first_sequence - 1}: records {prev.last_sequence + 1}.."
                               f"{header.first_sequence - 1} were cut from the end of segment {prev.index}",
                               name, index, prev.last_sequence + 1))
        else:
            report.add(Finding(Severity.ERROR, Diagnosis.CHAIN_BREAK,
                               f"segment does not continue {prev.name}: previous chain head differs (segment"
                               f" {prev.index} was altered or replaced)", name, index))
        return
    if not prev.closed:
        if note is not None and note.segment_id == prev.segment_id and note.last_valid_sequence == prev.last_sequence:
            _report_recovery(report, item, prev)
        else:
            report.add(Finding(Severity.WARNING, Diagnosis.TRUNCATION,
                               f"{prev.name} has no CLOSE record and this segment records no crash recovery",
                               name, index))
        return
    _report_recovery(report, item, None)


def _report_recovery(report: VerificationReport, item: ListedSegment, prev: _Prev | None) -> None:
    note = item.prefix.header.recovery
    if note is None:
        return
    header = item.prefix.header
    severity = Severity.INFO
    if note.kind == "TORN_HEADER":
        text = (f"before this segment, the writer died while creating a segment; its {note.dropped_bytes} bytes"
                f" (no record) were moved to {note.quarantine_file}")
    elif note.kind == "UNCLOSED":
        text = (f"segment {note.segment_id} was not closed (writer stopped); all records up to sequence"
                f" {note.last_valid_sequence} kept, nothing dropped")
    elif note.kind == "DAMAGED":
        severity = Severity.ERROR
        text = (f"on restart the writer found segment {note.segment_id} damaged from byte {note.dropped_offset} in a"
                " way no power cut explains; it left the segment as it was and continued after sequence"
                f" {note.last_valid_sequence}")
    else:
        seqs = note.dropped_sequences
        among = ", no complete record among them"
        if seqs:  # a power cut cannot tear complete records off: the writer threw away history (older writers did)
            severity = Severity.ERROR
            among = (f", among them {note.dropped_records} complete records (sequences {seqs[0]}..{seqs[1]}), which"
                     " no power cut explains")
        text = (f"after a crash the writer kept segment {note.segment_id} up to sequence {note.last_valid_sequence}"
                f" (byte {note.valid_bytes}) and dropped {note.dropped_bytes} bytes from byte {note.dropped_offset}"
                f"{among}; they were unwitnessed and are kept in {note.quarantine_file}")
    report.add(Finding(severity, Diagnosis.RECOVERED, text, item.path.name, header.segment_index))


def _analyze_segment(
    report: VerificationReport,
    item: ListedSegment,
    buf: bytes,
    ref_key: ed25519.Ed25519PublicKey | None,
    is_last: bool,
    witnessed: set[int],
) -> tuple[SegmentSummary, dict[int, bytes]]:
    prefix = item.prefix
    header = prefix.header
    name = item.path.name
    index = header.segment_index
    scan = scan_records(buf, prefix.records_offset, header.first_sequence)
    records = scan.records

    def add(severity: Severity, diagnosis: Diagnosis, message: str, seq: int | None = None,
            offset: int | None = None) -> None:
        report.add(Finding(severity, diagnosis, message, name, index, seq, offset))

    # bytes that are not records
    corrupt_ranges: list[tuple[int, int]] = []
    for gap in scan.gaps:
        before = max((r.sequence for r in records if r.offset < gap.offset), default=header.first_sequence - 1)
        after = min((r.sequence for r in records if r.offset > gap.offset), default=None)
        if gap.kind is GapKind.CORRUPT:
            if after is not None and after == before + 2:
                lost = f"record {before + 1} unreadable"
            elif after is not None and after > before + 2:
                lost = f"records {before + 1}..{after - 1} unreadable"
            else:
                lost = "no sequence number lost"
            add(Severity.ERROR, Diagnosis.CORRUPT_RECORD,
                f"{gap.length} bytes are not a valid record ({gap.reason}): bit flip or overwrite; {lost}",
                before + 1, gap.offset)
            if after is not None:
                corrupt_ranges.append((before + 1, after - 1))
        elif is_last:
            after_close = any(r.record_type == RecordType.CLOSE and r.offset < gap.offset for r in records)
            judgement = judge_tail(buf, gap.offset, before + 1, header.fsync_interval_ms, after_close)
            if judgement.explained:
                add(Severity.WARNING, Diagnosis.TORN_TAIL,
                    f"the last {gap.length} bytes are an {gap.reason} record after sequence {before}: the writer was"
                    " cut off while writing (power loss?) and has not recovered yet; nothing after it is on disk",
                    before + 1, gap.offset)
            else:
                add(Severity.ERROR, Diagnosis.CORRUPT_RECORD,
                    f"the last {gap.length} bytes are an {gap.reason} record after sequence {before}, not a power"
                    f" cut: {judgement.reason}", before + 1, gap.offset)
        else:
            add(Severity.ERROR, Diagnosis.CORRUPT_RECORD,
                f"the last {gap.length} bytes of this (not last) segment are an {gap.reason} record",
                before + 1, gap.offset)

    # order: duplicates, deletions, reordering
    seen: dict[int, int] = {}
    unique: list[ParsedRecord] = []
    for record in records:
        if record.sequence in seen:
            add(Severity.ERROR, Diagnosis.RECORD_DUPLICATED,
                f"record {record.sequence} appears again (first at byte {seen[record.sequence]})",
                record.sequence, record.offset)
            continue
        seen[record.sequence] = record.offset
        unique.append(record)
    if unique:
        present = set(seen)
        top = max(present)
        missing = [s for s in range(header.first_sequence, top + 1)
                   if s not in present and not any(lo <= s <= hi for lo, hi in corrupt_ranges)]
        for low, high in _ranges(missing):
            following = min((r for r in unique if r.sequence > high), key=lambda r: r.sequence)
            what = f"record {low} is" if low == high else f"records {low}..{high} ({high - low + 1}) are"
            add(Severity.ERROR, Diagnosis.RECORD_MISSING, f"{what} missing (deleted) before byte {following.offset}",
                low, following.offset)
        for earlier, later in itertools.pairwise(unique):
            if later.sequence < earlier.sequence:
                add(Severity.ERROR, Diagnosis.RECORD_REORDERED,
                    f"record {later.sequence} comes after record {earlier.sequence} (records reordered)",
                    later.sequence, later.offset)

    # chain and checkpoints
    head = chain_start(bytes.fromhex(header.prev_chain_head), prefix.header_json, prefix.signature)
    at: dict[int, bytes] = {}
    if header.first_sequence - 1 in witnessed:  # a checkpoint in an empty segment covers the previous record
        at[header.first_sequence - 1] = head
    tainted = bool(corrupt_ranges)
    expected_offset = prefix.records_offset
    prev_seq = header.first_sequence - 1
    last_cp = 0
    checkpoints = 0
    last_time = header.created_ns
    for record in records:
        if record.offset != expected_offset or record.sequence != prev_seq + 1:
            tainted = True
        if record.record_type in (RecordType.CHECKPOINT, RecordType.CLOSE):
            checkpoints += 1
            check = check_checkpoint(record, header, prev_seq, head, ref_key)
            cp = check.checkpoint
            if cp is None or not check.authentic:
                _report_unusable_checkpoint(add, check.faults, check.detail, record, cp)
                tainted = True
            else:
                if CheckpointFault.WRONG_SEQUENCE in check.faults and not tainted:
                    add(Severity.ERROR, Diagnosis.RECORD_REORDERED,
                        f"checkpoint covers record {cp.sequence} but follows record {prev_seq}", record.sequence,
                        record.offset)
                if CheckpointFault.HEAD_MISMATCH in check.faults:
                    if not tainted:
                        since = last_cp + 1 if last_cp else header.first_sequence
                        add(Severity.ERROR, Diagnosis.RECORD_ALTERED,
                            f"the chain over records {since}..{cp.sequence} differs from the signed checkpoint:"
                            " a record in that range was modified (its CRC recomputed); `ftrobot log export`"
                            " with the key names the record that fails authentication",
                            record.sequence, record.offset)
                    head = cp.chain_head
                tainted = False
                last_cp = cp.sequence
                last_time = max(last_time, cp.time_ns)
        else:
            last_time = max(last_time, record.time_ns)
        head = chain_next(head, record.raw)
        if record.sequence in witnessed and record.sequence not in at:
            at[record.sequence] = head
        expected_offset = record.offset + record.length
        prev_seq = record.sequence
    closed = bool(records) and records[-1].record_type == RecordType.CLOSE and scan.torn_tail is None
    last_sequence = records[-1].sequence if records else header.first_sequence - 1
    if is_last and not closed and records and last_sequence > last_cp:
        first_unsealed = last_cp + 1 if last_cp else header.first_sequence
        add(Severity.INFO, Diagnosis.UNSEALED_TAIL,
            f"records {first_unsealed}..{last_sequence} follow the last signed checkpoint (log still open, or the"
            " writer stopped before its next checkpoint); only CRC and chain protect them until then",
            first_unsealed)
    torn = scan.torn_tail
    summary = SegmentSummary(
        path=item.path, index=index, segment_id=header.segment_id, first_sequence=header.first_sequence,
        last_sequence=last_sequence, records=len(records),
        data_records=sum(1 for r in records if r.record_type == RecordType.DATA), checkpoints=checkpoints,
        closed=closed, created_ns=header.created_ns, last_time_ns=last_time, size=len(buf), final_head=head,
        last_checkpoint_sequence=last_cp, torn_bytes=torn.length if torn else 0,
    )
    return summary, at


def _report_unusable_checkpoint(
    add: Callable[..., None], faults: tuple[CheckpointFault, ...], detail: str, record: ParsedRecord,
    cp: Checkpoint | None,
) -> None:
    if cp is None or CheckpointFault.MALFORMED in faults:
        add(Severity.ERROR, Diagnosis.CORRUPT_RECORD, f"checkpoint payload malformed: {detail}", record.sequence,
            record.offset)
    elif CheckpointFault.BAD_SIGNATURE in faults:
        add(Severity.ERROR, Diagnosis.BAD_SIGNATURE, "checkpoint signature invalid (forged or altered checkpoint)",
            record.sequence, record.offset)
    else:
        add(Severity.ERROR, Diagnosis.FOREIGN_SEGMENT,
            f"checkpoint of segment {cp.segment_id} / robot {cp.robot_id} copied into this segment",
            record.sequence, record.offset)


def _ranges(values: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for value in values:
        if out and value == out[-1][1] + 1:
            out[-1] = (out[-1][0], value)
        else:
            out.append((value, value))
    return out


def _usable_heads(
    report: VerificationReport, heads: list[WitnessedHead] | None, robot_id: str,
    ref_key: ed25519.Ed25519PublicKey | None,
) -> list[WitnessedHead]:
    if heads is None:
        return []
    mine = [h for h in heads if h.identity_number == robot_id]
    if not mine:
        others = sorted({h.identity_number for h in heads})
        report.add(Finding(Severity.ERROR, Diagnosis.BAD_WITNESS,
                           f"the heads file has no witnessed heads for robot {robot_id} (it has: "
                           f"{', '.join(others) or 'none'})"))
        return []
    usable = []
    for head in mine:
        if head.signature and (ref_key is None or not head.signature_valid(ref_key)):
            report.add(Finding(Severity.WARNING, Diagnosis.BAD_WITNESS,
                               f"witnessed head for record {head.sequence} carries an invalid checkpoint signature;"
                               " ignored", sequence=head.sequence))
            continue
        usable.append(head)
    return usable


def _check_witnesses(
    report: VerificationReport,
    heads: list[WitnessedHead],
    summaries: dict[str, SegmentSummary],
    heads_at: dict[str, dict[int, bytes]],
    deleted: dict[int, DeletedSegment],
) -> None:
    deleted_by_id = {d.segment_id: d for d in deleted.values()}
    log_last = max((s.last_sequence for s in summaries.values()), default=0)
    cut: dict[str, list[WitnessedHead]] = defaultdict(list)  # witnessed beyond a segment's end
    for head in sorted(heads, key=lambda h: h.sequence):
        report.heads_checked += 1
        when = f" (witnessed {iso_time(head.witnessed_at_ns)})" if head.witnessed_at_ns else ""
        summary = summaries.get(head.segment_id)
        if summary is not None:
            found = heads_at.get(head.segment_id, {}).get(head.sequence)
            if found is None and head.sequence > summary.last_sequence:
                cut[head.segment_id].append(head)
            elif found is None:
                report.add(Finding(
                    Severity.ERROR, Diagnosis.RECORD_MISSING,
                    f"record {head.sequence}, witnessed by the department{when}, is not in the log (deleted or"
                    " unreadable)", summary.path.name, summary.index, head.sequence))
            elif found.hex() != head.chain_head:
                report.add(Finding(
                    Severity.ERROR, Diagnosis.WITNESS_MISMATCH,
                    f"the chain head after record {head.sequence} differs from the one the department witnessed"
                    f"{when}: the log up to that record was rewritten",
                    summary.path.name, summary.index, head.sequence))
            else:
                report.heads_confirmed += 1
            continue
        gone = deleted_by_id.get(head.segment_id)
        if gone is not None and gone.first_sequence <= head.sequence <= gone.last_sequence:
            if head.sequence == gone.last_sequence and gone.final_head != head.chain_head:
                report.add(Finding(Severity.ERROR, Diagnosis.WITNESS_MISMATCH,
                                   f"deleted segment {gone.segment_index}'s manifest head differs from the witnessed"
                                   f" head for record {head.sequence}{when}", segment_index=gone.segment_index,
                                   sequence=head.sequence))
            else:
                report.heads_confirmed += 1
            continue
        report.add(Finding(
            Severity.ERROR, Diagnosis.TRUNCATION,
            f"segment {head.segment_id} with record {head.sequence} was witnessed by the department{when} but is"
            f" not in the log (log ends at sequence {log_last}, no deletion manifest covers it)",
            sequence=head.sequence))
    for segment_id, lost in cut.items():
        summary = summaries[segment_id]
        last = lost[-1]
        when = f", the last witnessed {iso_time(last.witnessed_at_ns)}" if last.witnessed_at_ns else ""
        report.add(Finding(
            Severity.ERROR, Diagnosis.TRUNCATION,
            f"the department witnessed {len(lost)} checkpoint(s) up to record {last.sequence} in this segment{when},"
            f" but it now ends at record {summary.last_sequence}: records {summary.last_sequence + 1}.."
            f"{last.sequence} at least were cut off (not a torn write: the writer publishes a checkpoint only after"
            " it is on disk)", summary.path.name, summary.index, summary.last_sequence + 1))


def _judge_quarantine(
    report: VerificationReport, directory: Path, usable: list[ListedSegment], summaries: dict[str, SegmentSummary]
) -> None:
    """Every file crash recovery set aside, judged on its own bytes: a torn tail a power cut explains
    is a WARNING (its entries are lost), anything more is an ERROR (history was cut off)."""
    folder = directory / QUARANTINE_DIR
    if not folder.is_dir():
        return
    notes: dict[str, tuple[RecoveryNote, SegmentHeader]] = {}
    headers_by_name: dict[str, SegmentHeader] = {}
    for item in usable:
        header = item.prefix.header
        headers_by_name[item.path.name] = header
        if header.recovery is not None and header.recovery.quarantine_file:
            notes[header.recovery.quarantine_file] = (header.recovery, header)
    summaries_by_name = {s.path.name: s for s in summaries.values()}
    for path in sorted(folder.iterdir()):
        relative = f"{QUARANTINE_DIR}/{path.name}"
        segment_name, dot, suffix = path.name.partition(".ftbb.")
        segment_name += ".ftbb" if dot else ""
        try:
            data = path.read_bytes()
        except OSError as exc:
            report.add(Finding(Severity.ERROR, Diagnosis.QUARANTINED, f"{relative}: cannot read ({exc.strerror})"))
            continue
        noted = notes.get(relative)
        unnamed = "" if noted else " (no recovery note in a signed segment header names this file)"
        if suffix.startswith("torn-header"):
            report.add(Finding(Severity.INFO, Diagnosis.QUARANTINED,
                               f"{relative}: {len(data)} bytes of a segment header the writer was creating when it"
                               f" died (no record in them; kept as evidence){unnamed}", segment_name))
            continue
        if not suffix.startswith("torn-"):
            report.add(Finding(Severity.WARNING, Diagnosis.QUARANTINED,
                               f"{relative}: {len(data)} bytes of unknown origin in the quarantine{unnamed}"))
            continue
        summary = summaries_by_name.get(segment_name)
        torn_header = headers_by_name.get(segment_name) or (noted[1] if noted else None)
        interval = torn_header.fsync_interval_ms if torn_header is not None else 0
        if noted:
            expected = noted[0].last_valid_sequence + 1
        else:
            expected = summary.last_sequence + 1 if summary is not None else UNKNOWN_SEQUENCE
        judgement = judge_tail(data, 0, expected, interval, after_close=summary is not None and summary.closed)
        offset = noted[0].dropped_offset if noted else None
        index = summary.index if summary is not None else None
        if judgement.explained:
            report.add(Finding(
                Severity.WARNING, Diagnosis.QUARANTINED,
                f"{relative}: {len(data)} bytes torn off the end of the segment by a power cut (no complete record"
                " among them, within what one fsync interval can lose); the entries in them are lost; kept as"
                f" evidence{unnamed}", segment_name, index, expected if expected else None, offset))
        else:
            report.add(Finding(
                Severity.ERROR, Diagnosis.QUARANTINED,
                f"{relative}: {len(data)} bytes cut from the segment by crash recovery that no power cut explains:"
                f" {judgement.reason}; the segment's history was cut off{unnamed}",
                segment_name, index, expected if expected else None, offset))
