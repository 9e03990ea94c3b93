"""Reading segment files: records without a key (structure, CRC, order), entries with one."""

from __future__ import annotations

import enum
import json
import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ftrobot_guard.blackbox.errors import BlackBoxError, FormatError, KeyMismatchError
from ftrobot_guard.blackbox.key_wrap import find_wrap, unwrap_data_key
from ftrobot_guard.blackbox.payload_codec import PayloadDecoder, open_dictionary
from ftrobot_guard.blackbox.record_format import (
    MAGIC,
    MAX_HEADER_LEN,
    SEGMENT_SUFFIX,
    SIGNATURE_LEN,
    Entry,
    KeyWrap,
    ParsedRecord,
    RecordProblem,
    SegmentPrefix,
    data_aad,
    decode_entries,
    find_next_record,
    parse_record_at,
    parse_segment_prefix,
)
from ftrobot_guard.trust.keys import fingerprint

KEYS_DIR = "keys"
QUARANTINE_DIR = "quarantine"
DELETIONS_DIR = "deletions"
LOCK_FILE = ".lock"
RESYNC_WINDOW = 256  # how many following sequence numbers a resync after corruption looks for
_PREFIX_HEAD = struct.Struct(">8sHI")  # magic, version, header_len


def list_segment_files(directory: Path) -> list[Path]:
    """Segment files of a log directory, sorted by name (:func:`list_segments` orders them by header index)."""
    try:
        names = sorted(p for p in directory.iterdir() if p.name.endswith(SEGMENT_SUFFIX) and p.is_file())
    except FileNotFoundError:
        raise BlackBoxError(f"{directory}: no such log directory") from None
    except NotADirectoryError:
        raise BlackBoxError(f"{directory}: not a directory") from None
    except PermissionError:
        raise BlackBoxError(f"{directory}: permission denied") from None
    return names


def read_prefix(path: Path) -> SegmentPrefix:
    """Parse only the header of a segment file (the records are not read)."""
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
class ListedSegment:
    """A segment file whose header could be read."""

    path: Path
    prefix: SegmentPrefix


@dataclass
class SegmentListing:
    """The segment files of a log directory: readable ones in log order, and the others with why."""

    segments: list[ListedSegment] = field(default_factory=list)  # by segment index, then creation time
    unreadable: list[tuple[Path, BlackBoxError]] = field(default_factory=list)  # FormatError, or I/O


def list_segments(directory: Path) -> SegmentListing:
    """Read the header of every segment file of ``directory`` and order the segments by their signed
    index (not by file name). Raises BlackBoxError only when the directory cannot be listed."""
    listing = SegmentListing()
    for path in list_segment_files(directory):
        try:
            listing.segments.append(ListedSegment(path, read_prefix(path)))
        except BlackBoxError as exc:
            listing.unreadable.append((path, exc))
    listing.segments.sort(key=lambda item: (item.prefix.header.segment_index, item.prefix.header.created_ns))
    return listing


def read_file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BlackBoxError(f"{path}: no such file") from None
    except OSError as exc:
        raise BlackBoxError(f"{path}: cannot read ({exc.strerror})") from None


class GapKind(enum.Enum):
    """Bytes in a segment that hold no valid record."""

    CORRUPT = "corrupt"  # invalid bytes followed by valid records
    TORN_TAIL = "torn tail"  # invalid or incomplete bytes up to the end of the file


@dataclass(frozen=True)
class ByteGap:
    kind: GapKind
    offset: int
    length: int
    reason: str  # RecordProblem value at ``offset``


@dataclass
class RecordScan:
    """All valid records of a segment in file order, and the bytes that are not records."""

    records: list[ParsedRecord] = field(default_factory=list)
    gaps: list[ByteGap] = field(default_factory=list)
    end: int = 0

    @property
    def torn_tail(self) -> ByteGap | None:
        return self.gaps[-1] if self.gaps and self.gaps[-1].kind is GapKind.TORN_TAIL else None


def scan_records(buf: bytes, start: int, first_sequence: int) -> RecordScan:
    """Walk the records from ``start``; after an invalid record, resynchronise on the next valid
    record whose sequence is near the expected one."""
    scan = RecordScan(end=len(buf))
    offset = start
    expected = first_sequence
    end = len(buf)
    while offset < end:
        found = parse_record_at(buf, offset)
        if isinstance(found, ParsedRecord):
            scan.records.append(found)
            offset += found.length
            expected = max(expected, found.sequence + 1)
            continue
        problem: RecordProblem = found
        low = max(first_sequence, expected - RESYNC_WINDOW)
        nxt = find_next_record(buf, offset + 1, low, expected + RESYNC_WINDOW)
        if nxt is None:
            scan.gaps.append(ByteGap(GapKind.TORN_TAIL, offset, end - offset, problem.value))
            break
        scan.gaps.append(ByteGap(GapKind.CORRUPT, offset, nxt.offset - offset, problem.value))
        offset = nxt.offset
    return scan


# --------------------------------------------------------------------------- decryption


def sidecar_wrap_path(directory: Path, segment_id: str) -> Path:
    return directory / KEYS_DIR / f"{segment_id}.wrap"


def load_sidecar_wrap(directory: Path, segment_id: str) -> KeyWrap | None:
    path = sidecar_wrap_path(directory, segment_id)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BlackBoxError(f"{path}: cannot read key wrap ({exc})") from None
    try:
        return KeyWrap.from_json(json.loads(text), str(path))
    except ValueError as exc:
        raise BlackBoxError(f"{path}: malformed key wrap ({exc})") from None


def open_data_key(directory: Path, prefix: SegmentPrefix, private_key: x25519.X25519PrivateKey) -> bytes:
    """Unwrap the segment's data key with ``private_key`` (header wraps, then the robot's sidecar)."""
    header = prefix.header
    wraps = list(header.key_wraps)
    sidecar = load_sidecar_wrap(directory, header.segment_id) if header.robot_key_wrap == "sidecar" else None
    if sidecar is not None:
        wraps.append(sidecar)
    wrap = find_wrap(wraps, private_key)
    if wrap is None:
        recipients = ", ".join(w.recipient for w in wraps) or "none left"
        raise KeyMismatchError(
            f"segment {header.segment_index} ({header.segment_id}): key {fingerprint(private_key.public_key())}"
            f" is not a recipient (recipients: {recipients})"
        )
    try:
        return unwrap_data_key(wrap, private_key, header.segment_id_raw)
    except KeyMismatchError as exc:
        raise KeyMismatchError(f"segment {header.segment_index} ({header.segment_id}): {exc}") from None


class RecordDecryptError(BlackBoxError):
    """A DATA record does not authenticate or decode under the segment's data key."""


class _DecoderCache(threading.local):
    """Per thread: the decoders of the last few segments, so a segment's dictionary is opened once."""

    size = 8

    def __init__(self) -> None:
        self.decoders: OrderedDict[tuple[int, str], tuple[AESGCM, str, PayloadDecoder]] = OrderedDict()


_DECODER_CACHE = _DecoderCache()


def payload_decoder(aead: AESGCM, prefix: SegmentPrefix) -> PayloadDecoder:
    """The decoder of a segment's DATA blocks; opens (decrypts) the segment's dictionary with ``aead``.
    Raises FormatError when the dictionary does not authenticate or decode."""
    header = prefix.header
    if not header.dictionary:
        return PayloadDecoder(header.version)
    decoders = _DECODER_CACHE.decoders
    key = (id(aead), header.segment_id)
    hit = decoders.get(key)
    if hit is not None and hit[0] is aead and hit[1] == header.dictionary:
        decoders.move_to_end(key)
        return hit[2]
    decoder = PayloadDecoder(header.version, open_dictionary(aead, header.segment_id_raw, header.dictionary))
    decoders[key] = (aead, header.dictionary, decoder)
    while len(decoders) > _DECODER_CACHE.size:
        decoders.popitem(last=False)
    return decoder


def decrypt_entries(aead: AESGCM, prefix: SegmentPrefix, record: ParsedRecord) -> list[Entry]:
    """Decrypt and decode the entries of one DATA record."""
    header = prefix.header
    aad = data_aad(header.robot_id, header.segment_id_raw, record.header)
    try:
        plaintext = aead.decrypt(record.nonce, record.payload, aad)
    except InvalidTag:
        raise RecordDecryptError(
            f"segment {header.segment_index} sequence {record.sequence} (byte {record.offset}):"
            " authentication failed (record altered or wrong key)"
        ) from None
    try:
        return decode_entries(payload_decoder(aead, prefix).decode(plaintext, time_ns=record.time_ns))
    except FormatError as exc:
        raise RecordDecryptError(
            f"segment {header.segment_index} sequence {record.sequence} (byte {record.offset}): {exc}"
        ) from None


def directory_size(directory: Path) -> int:
    """Bytes used by the log directory's files (segments, manifests, wraps, quarantine)."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total
