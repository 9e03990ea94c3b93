"""Byte layout of the black-box format, versions 1 and 2 (specified in docs/blackbox-format.md).

A segment file is::

    MAGIC (8) | version u16 | header_len u32 | header JSON (canonical) | signature (64, Ed25519)
    record*  where record = body_len u32 | type u8 | flags u8 | sequence u64 | time_ns u64
                            | nonce (12) | payload | crc32 u32

All integers are big-endian. ``body_len`` counts the bytes after itself (header rest, payload
and CRC). DATA payloads are AES-256-GCM ciphertext+tag of a block of entries; CHECKPOINT and
CLOSE payloads are plaintext signed checkpoints, so verification needs no decryption key.
The chain: ``h_start = SHA-256(CHAIN_DOMAIN || prev_head || SHA-256(header_json || signature))``
and ``h_i = SHA-256(h_{i-1} || record bytes)``.
Versions 1 and 2 differ only in how a DATA block's entries are encoded before encryption
(version 1: zlib; version 2: zstd with a per-segment dictionary sealed in the header), which
:mod:`ftrobot_guard.blackbox.payload_codec` implements.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import itertools
import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.blackbox.errors import FormatError, UnsupportedVersionError

MAGIC = b"\x89FTBB\r\n\x1a"
FORMAT_VERSION = 2  # what the writer produces by default (version 1 on request: zlib blocks)
SUPPORTED_VERSIONS = frozenset({1, 2})
COMPRESSION_BY_VERSION = {1: "zlib", 2: "zstd"}  # the header's "compression" field
MAX_SEALED_DICTIONARY_CHARS = 1 << 20  # the header's "dictionary" field (base64)
SEGMENT_SUFFIX = ".ftbb"
HEADER_FORMAT_NAME = "ftrobot-blackbox-segment"
HEADER_SIGN_DOMAIN = b"ftrobot-blackbox-header-v1\x00"
CHECKPOINT_SIGN_DOMAIN = b"ftrobot-blackbox-checkpoint-v1\x00"
CHAIN_DOMAIN = b"ftrobot-blackbox-chain-v1\x00"
AAD_DOMAIN = b"ftrobot-blackbox-record-v1\x00"
ZERO_HEAD = bytes(32)
SIGNATURE_LEN = 64
HEAD_LEN = 32
MAX_HEADER_LEN = 1 << 20
MAX_BODY_LEN = 1 << 26  # 64 MiB: anything larger is corruption, not a record
MAX_ENTRY_FIELD = 0xFFFF

_PREFIX = struct.Struct(">8sHI")  # magic, version, header_len
_FRAME = struct.Struct(">IBBQQ12s")  # body_len, type, flags, sequence, time_ns, nonce
_COMPACT_FRAME = struct.Struct(">IBBQQ")  # the same without the nonce (flag COMPACT_FRAME: format version 2)
_CRC = struct.Struct(">I")
FRAME_HEADER_LEN = _FRAME.size  # 34
COMPACT_FRAME_HEADER_LEN = _COMPACT_FRAME.size  # 22
FRAME_OVERHEAD = FRAME_HEADER_LEN + _CRC.size  # 38
COMPACT_FRAME = 0x01  # flags bit: the nonce is not stored but derived from the sequence (docs §5)
_KNOWN_FLAGS = frozenset({0, COMPACT_FRAME})
_NONCE = struct.Struct(">4xQ")
SEGMENT_ID_RE = re.compile(r"^[0-9a-f]{32}\Z")  # segment and log ids: 32 lowercase hex digits
HEX64_RE = re.compile(r"^[0-9a-f]{64}\Z")  # chain heads and raw keys: 64 lowercase hex digits
_BASE64_RE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")


class RecordType(enum.IntEnum):
    """Type byte of a record (frame)."""

    DATA = 1  # encrypted block of entries
    CHECKPOINT = 2  # signed checkpoint, plaintext
    CLOSE = 3  # final signed checkpoint of a segment, plaintext


class Tier(enum.IntEnum):
    """Why an entry was recorded."""

    EVENT = 0  # every message of an event/command topic, in full
    LONG_TERM = 1  # decimated robot state for the long-term log
    FULL_RATE = 2  # full-rate robot state around an incident (ring dump and post-incident)


class EntryKind(enum.IntEnum):
    """What an entry holds."""

    MESSAGE = 1  # a serialized ROS message (CDR) with its topic and type name
    NOTICE = 2  # a note by the recorder itself (e.g. entries lost to a full disk), UTF-8 JSON


def segment_file_name(segment_index: int, segment_id: str) -> str:
    """File name of a segment: ``<index:010d>-<segment_id>.ftbb``."""
    return f"{segment_index:010d}-{segment_id}{SEGMENT_SUFFIX}"


def counter_nonce(sequence: int) -> bytes:
    """The 12-byte AES-GCM nonce of a record: 4 zero bytes and the sequence (unique per key)."""
    return _NONCE.pack(sequence)


def canonical_json(value: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no spaces, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode(
        "ascii"
    )


# --------------------------------------------------------------------------- chain


def chain_start(prev_head: bytes, header_json: bytes, signature: bytes) -> bytes:
    """Chain head before a segment's first record, binding the previous head and the header."""
    header_digest = hashlib.sha256(header_json + signature).digest()
    return hashlib.sha256(CHAIN_DOMAIN + prev_head + header_digest).digest()


def chain_next(head: bytes, record: bytes | memoryview) -> bytes:
    """``h_i = SHA-256(h_{i-1} || record bytes)``."""
    digest = hashlib.sha256(head)
    digest.update(record)
    return digest.digest()


# --------------------------------------------------------------------------- records (frames)


def frame_header_len(flags: int) -> int:
    """Bytes of a record header with these flags: 22 for a compact frame (version 2), else 34."""
    return COMPACT_FRAME_HEADER_LEN if flags == COMPACT_FRAME else FRAME_HEADER_LEN


def record_nonce(record_type: int, sequence: int) -> bytes:
    """The nonce a compact frame implies: the counter nonce for DATA, zeros for checkpoints."""
    return counter_nonce(sequence) if record_type == RecordType.DATA else bytes(12)


def encode_record(record_type: int, sequence: int, time_ns: int, nonce: bytes, payload: bytes,
                  compact: bool = False) -> bytes:
    """Frame one record: header, payload, CRC-32 over both (``compact``: no nonce field, version 2)."""
    return encode_record_with_header(record_header_bytes(len(payload), record_type, sequence, time_ns, nonce,
                                                         compact), payload)


def record_header_bytes(payload_len: int, record_type: int, sequence: int, time_ns: int, nonce: bytes,
                        compact: bool = False) -> bytes:
    """The header bytes of a record whose payload has ``payload_len`` bytes: 34, or 22 when ``compact``
    (the nonce is then not stored: it must be :func:`record_nonce` of the type and sequence)."""
    if compact:
        if nonce != record_nonce(record_type, sequence):
            raise ValueError("a compact frame's nonce must be the one its type and sequence imply")
        return _COMPACT_FRAME.pack(COMPACT_FRAME_HEADER_LEN + payload_len, record_type, COMPACT_FRAME, sequence,
                                   time_ns)
    return _FRAME.pack(FRAME_HEADER_LEN - 4 + payload_len + 4, record_type, 0, sequence, time_ns, nonce)


def encode_record_with_header(head: bytes, payload: bytes) -> bytes:
    """Frame a record whose header was built with :func:`record_header_bytes`."""
    body = head + payload
    return body + _CRC.pack(zlib.crc32(body))


def data_aad(robot_id: str, segment_id_raw: bytes, record_header: bytes) -> bytes:
    """Associated data of a DATA record: binds robot, segment, and the record's clear header."""
    rid = robot_id.encode("utf-8")
    return AAD_DOMAIN + struct.pack(">H", len(rid)) + rid + segment_id_raw + record_header


@dataclass(frozen=True)
class ParsedRecord:
    """One record found in a segment file."""

    offset: int
    length: int  # total bytes of the record
    record_type: int
    flags: int
    sequence: int
    time_ns: int
    nonce: bytes  # stored, or (compact frame) derived from the type and sequence
    payload: bytes
    raw: bytes  # the full record bytes (what the chain hashes)

    @property
    def header(self) -> bytes:
        """The record's clear header as stored (34 bytes, or 22 in a compact frame)."""
        return self.raw[: frame_header_len(self.flags)]


class RecordProblem(enum.Enum):
    """Why no record could be read at an offset."""

    INCOMPLETE = "incomplete"  # the file ends inside the record (torn write)
    BAD_LENGTH = "bad length"  # impossible length field
    BAD_CRC = "bad crc"  # bytes changed or half-written
    BAD_TYPE = "unknown record type"


def parse_record_at(buf: bytes | memoryview, offset: int) -> ParsedRecord | RecordProblem:
    """Parse the record starting at ``offset`` or say why there is none."""
    end = len(buf)
    if offset + COMPACT_FRAME_HEADER_LEN > end:
        return RecordProblem.INCOMPLETE
    flags = buf[offset + 5]
    header_len = frame_header_len(flags)
    if offset + header_len > end:
        return RecordProblem.INCOMPLETE
    if header_len == COMPACT_FRAME_HEADER_LEN:
        body_len, rtype, flags, sequence, time_ns = _COMPACT_FRAME.unpack_from(buf, offset)
        nonce = record_nonce(rtype, sequence)
    else:
        body_len, rtype, flags, sequence, time_ns, nonce = _FRAME.unpack_from(buf, offset)
    if body_len < header_len or body_len > MAX_BODY_LEN:
        return RecordProblem.BAD_LENGTH
    total = 4 + body_len
    if offset + total > end:
        return RecordProblem.INCOMPLETE
    raw = bytes(buf[offset : offset + total])
    (crc,) = _CRC.unpack_from(raw, total - 4)
    if zlib.crc32(memoryview(raw)[: total - 4]) != crc:
        return RecordProblem.BAD_CRC
    if rtype not in _RECORD_TYPES:
        return RecordProblem.BAD_TYPE
    return ParsedRecord(
        offset=offset,
        length=total,
        record_type=rtype,
        flags=flags,
        sequence=sequence,
        time_ns=time_ns,
        nonce=bytes(nonce),
        payload=raw[header_len : total - 4],
        raw=raw,
    )


_RECORD_TYPES = frozenset(int(t) for t in RecordType)


@dataclass(frozen=True)
class FrameHeader:
    """What the first bytes of a record claim, before (or without) any CRC check."""

    length: int  # total bytes of the record
    record_type: int
    sequence: int
    time_ns: int


def peek_frame_header(buf: bytes | memoryview, offset: int) -> FrameHeader | None:
    """The header fields of the record at ``offset`` as they stand (CRC not checked, the record may
    be cut short); None when fewer than a header's bytes remain or the length, type or flags are
    impossible."""
    if offset + COMPACT_FRAME_HEADER_LEN > len(buf):
        return None
    body_len, rtype, flags, sequence, time_ns = _COMPACT_FRAME.unpack_from(buf, offset)
    if flags not in _KNOWN_FLAGS or offset + frame_header_len(flags) > len(buf):
        return None
    if body_len < frame_header_len(flags) or body_len > MAX_BODY_LEN or rtype not in _RECORD_TYPES:
        return None
    return FrameHeader(4 + body_len, rtype, sequence, time_ns)


def find_next_record(buf: bytes, start: int, low: int, high: int) -> ParsedRecord | None:
    """Resynchronise after a corrupt record: the earliest valid record at or after ``start`` whose
    sequence lies in ``[low, high)``. Candidates are found by the record header's type and flags
    bytes followed by the sequence's high 32 bits (C-speed ``bytes.find``), then CRC-checked."""
    best: ParsedRecord | None = None
    prefixes = {struct.pack(">I", low >> 32), struct.pack(">I", max(low, high - 1) >> 32)}
    for rtype, flags in itertools.product(_RECORD_TYPES, _KNOWN_FLAGS):
        for high_bytes in prefixes:
            needle = bytes((rtype, flags)) + high_bytes
            pos = buf.find(needle, start + 4)
            while pos != -1 and (best is None or pos - 4 < best.offset):
                found = parse_record_at(buf, pos - 4)
                if isinstance(found, ParsedRecord) and low <= found.sequence < high:
                    best = found
                    break
                pos = buf.find(needle, pos + 1)
    return best


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class Entry:
    """One logged item inside a DATA record."""

    time_ns: int
    topic: str
    type_name: str
    data: bytes
    guardian: str = ""
    tier: Tier = Tier.EVENT
    kind: EntryKind = EntryKind.MESSAGE


ENTRY_HEADER = struct.Struct(">BBQHHHI")  # kind, tier, time_ns, topic_len, type_len, guardian_len, data_len


def encode_entry(entry: Entry) -> bytes:
    """Binary form of one entry (see the spec, "Entries")."""
    topic = entry.topic.encode("utf-8")
    type_name = entry.type_name.encode("utf-8")
    guardian = entry.guardian.encode("utf-8")
    if max(len(topic), len(type_name), len(guardian)) > MAX_ENTRY_FIELD:
        raise ValueError("entry topic, type name and guardian must each be at most 65535 bytes")
    return (
        ENTRY_HEADER.pack(
            int(entry.kind), int(entry.tier), entry.time_ns, len(topic), len(type_name), len(guardian), len(entry.data)
        )
        + topic
        + type_name
        + guardian
        + entry.data
    )


def decode_entries(body: bytes) -> list[Entry]:
    """Split a decompressed block body into entries; raise FormatError when malformed."""
    entries: list[Entry] = []
    pos = 0
    end = len(body)
    while pos < end:
        if pos + ENTRY_HEADER.size > end:
            raise FormatError(f"entry at byte {pos} of the block is cut short")
        kind, tier, time_ns, tlen, ylen, glen, dlen = ENTRY_HEADER.unpack_from(body, pos)
        pos += ENTRY_HEADER.size
        stop = pos + tlen + ylen + glen + dlen
        if stop > end:
            raise FormatError(f"entry ending at byte {stop} overruns its block of {end} bytes")
        try:
            topic = body[pos : pos + tlen].decode("utf-8")
            type_name = body[pos + tlen : pos + tlen + ylen].decode("utf-8")
            guardian = body[pos + tlen + ylen : pos + tlen + ylen + glen].decode("utf-8")
            entries.append(
                Entry(
                    time_ns=time_ns,
                    topic=topic,
                    type_name=type_name,
                    guardian=guardian,
                    data=body[pos + tlen + ylen + glen : stop],
                    tier=Tier(tier),
                    kind=EntryKind(kind),
                )
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise FormatError(f"entry at byte {pos - ENTRY_HEADER.size} of the block is malformed: {exc}") from None
        pos = stop
    return entries


# --------------------------------------------------------------------------- segment header


@dataclass(frozen=True)
class KeyWrap:
    """A segment's data key wrapped for one X25519 recipient (see key_wrap.py)."""

    recipient: str  # fingerprint of the recipient's X25519 public key
    recipient_key: str  # hex raw X25519 public key
    ephemeral_key: str  # hex raw X25519 ephemeral public key
    nonce: str  # hex, 12 bytes
    wrapped_key: str  # hex, 48 bytes (32-byte key + 16-byte tag)

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(value: Any, where: str) -> KeyWrap:
        if not isinstance(value, dict):
            raise FormatError(f"{where}: key wrap is not an object")
        fields = {}
        for name, length in (("recipient", None), ("recipient_key", 64), ("ephemeral_key", 64), ("nonce", 24),
                             ("wrapped_key", 96)):
            text = value.get(name)
            if not isinstance(text, str) or (length is not None and not re.fullmatch(f"[0-9a-f]{{{length}}}", text)):
                raise FormatError(f"{where}: key wrap field {name!r} is missing or malformed")
            fields[name] = text
        return KeyWrap(**fields)


@dataclass(frozen=True)
class RecoveryNote:
    """What recovery dropped from the previous segment before this one was started."""

    kind: str  # "TORN_TAIL", "UNCLOSED", "TORN_HEADER" or "DAMAGED" (docs/blackbox-format.md §7)
    segment_id: str
    last_valid_sequence: int  # 0 when the segment held no valid record
    last_valid_head: str
    valid_bytes: int
    dropped_bytes: int
    dropped_offset: int
    dropped_records: int  # complete records with a valid CRC found in the dropped bytes
    dropped_sequences: list[int] = field(default_factory=list)  # [first, last] of those, or []
    quarantine_file: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # the JSON names are the field names

    @staticmethod
    def from_json(value: Any, where: str) -> RecoveryNote:
        if not isinstance(value, dict):
            raise FormatError(f"{where}: recovery is not an object")
        try:
            return RecoveryNote(
                kind=_str(value, "kind", where),
                segment_id=_str(value, "segment_id", where),
                last_valid_sequence=_int(value, "last_valid_sequence", where),
                last_valid_head=_hex64(value, "last_valid_head", where),
                valid_bytes=_int(value, "valid_bytes", where),
                dropped_bytes=_int(value, "dropped_bytes", where),
                dropped_offset=_int(value, "dropped_offset", where),
                dropped_records=_int(value, "dropped_records", where),
                dropped_sequences=[int(x) for x in value.get("dropped_sequences", [])],
                quarantine_file=str(value.get("quarantine_file", "")),
            )
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{where}: recovery note malformed: {exc}") from None


def _str(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise FormatError(f"{where}: field {name!r} is missing or not a string")
    return value


def _int(obj: dict[str, Any], name: str, where: str) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(f"{where}: field {name!r} is missing or not a non-negative integer")
    return value


def _num(obj: dict[str, Any], name: str, where: str) -> float:
    value = obj.get(name)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0 or value == float("inf"):
        raise FormatError(f"{where}: field {name!r} is missing or not a finite non-negative number")
    return float(value)


def _hex64(obj: dict[str, Any], name: str, where: str) -> str:
    value = _str(obj, name, where)
    if not HEX64_RE.match(value):
        raise FormatError(f"{where}: field {name!r} is not 64 lowercase hex digits")
    return value


@dataclass(frozen=True)
class SegmentHeader:
    """The signed header at the start of every segment."""

    robot_id: str
    robot_key: str  # hex raw Ed25519 public key that signs headers and checkpoints
    log_id: str  # 32 hex, random per log directory
    segment_id: str  # 32 hex, random per segment
    segment_index: int  # 0 for the log's first segment, +1 per segment
    first_sequence: int  # sequence of the segment's first record (1 in segment 0)
    prev_segment_id: str  # "" for segment 0
    prev_chain_head: str  # hex; 64 zeros for segment 0
    created_ns: int
    key_wraps: tuple[KeyWrap, ...]
    robot_key_wrap: str = "none"  # "sidecar" when a copy for the robot's own X25519 key exists
    checkpoint_every_records: int = 0
    checkpoint_every_s: float = 0.0
    fsync_interval_ms: int = 0
    recovery: RecoveryNote | None = None
    certificate: str = ""  # hex DER X.509 identity certificate of the robot, if configured
    version: int = FORMAT_VERSION
    dictionary: str = ""  # version 2: base64 of the sealed segment dictionary (payload_codec), "" for none

    def to_json(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"dictionary": self.dictionary} if self.version >= 2 else {}
        return fields | {
            "format": HEADER_FORMAT_NAME,
            "version": self.version,
            "robot_id": self.robot_id,
            "robot_key": self.robot_key,
            "log_id": self.log_id,
            "segment_id": self.segment_id,
            "segment_index": self.segment_index,
            "first_sequence": self.first_sequence,
            "prev_segment_id": self.prev_segment_id,
            "prev_chain_head": self.prev_chain_head,
            "created_ns": self.created_ns,
            "cipher": "AES-256-GCM",
            "compression": COMPRESSION_BY_VERSION.get(self.version, ""),
            "nonce": "counter",
            "key_wraps": [w.to_json() for w in self.key_wraps],
            "robot_key_wrap": self.robot_key_wrap,
            "checkpoint_every_records": self.checkpoint_every_records,
            "checkpoint_every_s": self.checkpoint_every_s,
            "fsync_interval_ms": self.fsync_interval_ms,
            "recovery": None if self.recovery is None else self.recovery.to_json(),
            "certificate": self.certificate,
        }

    def encode(self) -> bytes:
        return canonical_json(self.to_json())

    @property
    def segment_id_raw(self) -> bytes:
        return bytes.fromhex(self.segment_id)

    @staticmethod
    def decode(data: bytes, where: str) -> SegmentHeader:
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise FormatError(f"{where}: segment header is not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise FormatError(f"{where}: segment header is not a JSON object")
        if obj.get("format") != HEADER_FORMAT_NAME:
            raise FormatError(f"{where}: segment header 'format' is {obj.get('format')!r}, not {HEADER_FORMAT_NAME!r}")
        version = obj.get("version")
        if version not in SUPPORTED_VERSIONS:
            raise UnsupportedVersionError(
                f"{where}: segment header format version {version!r} is not supported (this tool reads 1 and 2)"
            )
        compression = COMPRESSION_BY_VERSION[version]
        if obj.get("cipher") != "AES-256-GCM" or obj.get("compression") != compression or obj.get("nonce") != "counter":
            raise FormatError(f"{where}: segment header names an unsupported cipher, compression or nonce scheme"
                              f" (version {version} uses AES-256-GCM, {compression}, counter)")
        dictionary = ""
        if version >= 2:
            dictionary = _str(obj, "dictionary", where)
            if len(dictionary) > MAX_SEALED_DICTIONARY_CHARS or not _BASE64_RE.match(dictionary):
                raise FormatError(f"{where}: field 'dictionary' is not base64 of at most {MAX_SEALED_DICTIONARY_CHARS}"
                                  " characters")
        segment_id = _str(obj, "segment_id", where)
        log_id = _str(obj, "log_id", where)
        for name, value in (("segment_id", segment_id), ("log_id", log_id)):
            if not SEGMENT_ID_RE.match(value):
                raise FormatError(f"{where}: field {name!r} is not 32 lowercase hex digits")
        prev_segment_id = _str(obj, "prev_segment_id", where)
        if prev_segment_id and not SEGMENT_ID_RE.match(prev_segment_id):
            raise FormatError(f"{where}: field 'prev_segment_id' is not 32 lowercase hex digits")
        wraps_raw = obj.get("key_wraps")
        if not isinstance(wraps_raw, list):
            raise FormatError(f"{where}: field 'key_wraps' is missing or not a list")
        recovery_raw = obj.get("recovery")
        robot_key = _hex64(obj, "robot_key", where)
        certificate = obj.get("certificate", "")
        if not isinstance(certificate, str) or (certificate and not re.fullmatch(r"(?:[0-9a-f]{2})+", certificate)):
            raise FormatError(f"{where}: field 'certificate' is not hex")
        robot_key_wrap = _str(obj, "robot_key_wrap", where)
        if robot_key_wrap not in ("none", "sidecar"):
            raise FormatError(f"{where}: field 'robot_key_wrap' must be 'none' or 'sidecar'")
        index = _int(obj, "segment_index", where)
        first_sequence = _int(obj, "first_sequence", where)
        if first_sequence < 1:
            raise FormatError(f"{where}: field 'first_sequence' must be at least 1")
        return SegmentHeader(
            robot_id=_str(obj, "robot_id", where),
            robot_key=robot_key,
            log_id=log_id,
            segment_id=segment_id,
            segment_index=index,
            first_sequence=first_sequence,
            prev_segment_id=prev_segment_id,
            prev_chain_head=_hex64(obj, "prev_chain_head", where),
            created_ns=_int(obj, "created_ns", where),
            key_wraps=tuple(KeyWrap.from_json(w, where) for w in wraps_raw),
            robot_key_wrap=robot_key_wrap,
            checkpoint_every_records=_int(obj, "checkpoint_every_records", where),
            checkpoint_every_s=_num(obj, "checkpoint_every_s", where),
            fsync_interval_ms=_int(obj, "fsync_interval_ms", where),
            recovery=None if recovery_raw is None else RecoveryNote.from_json(recovery_raw, where),
            certificate=certificate,
            version=version,
            dictionary=dictionary,
        )


def sign_header(key: ed25519.Ed25519PrivateKey, header_json: bytes) -> bytes:
    return key.sign(HEADER_SIGN_DOMAIN + header_json)


def header_signature_valid(public_key: ed25519.Ed25519PublicKey, header_json: bytes, signature: bytes) -> bool:
    try:
        public_key.verify(signature, HEADER_SIGN_DOMAIN + header_json)
    except InvalidSignature:
        return False
    return True


def encode_segment_prefix(header_json: bytes, signature: bytes, version: int = FORMAT_VERSION) -> bytes:
    """Bytes of a segment file before its first record (``version`` must be the header's)."""
    if len(signature) != SIGNATURE_LEN:
        raise ValueError("header signature must be 64 bytes")
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"format version {version} is not one this code writes")
    return _PREFIX.pack(MAGIC, version, len(header_json)) + header_json + signature


@dataclass(frozen=True)
class SegmentPrefix:
    """A parsed segment header with its exact bytes."""

    header: SegmentHeader
    header_json: bytes
    signature: bytes
    records_offset: int  # where the first record starts


class TornHeaderError(FormatError):
    """The file ends inside the segment header (the writer died while creating the segment)."""


def parse_segment_prefix(buf: bytes | memoryview, where: str) -> SegmentPrefix:
    """Parse and structurally validate a segment header (signature not checked here)."""
    if len(buf) < _PREFIX.size:
        if bytes(buf[: len(MAGIC)]) == MAGIC[: len(buf)]:
            raise TornHeaderError(f"{where}: file ends inside the segment header ({len(buf)} bytes)")
        raise FormatError(f"{where}: not a black-box segment (bad magic)")
    magic, version, header_len = _PREFIX.unpack_from(buf, 0)
    if magic != MAGIC:
        raise FormatError(f"{where}: not a black-box segment (bad magic at byte 0)")
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersionError(
            f"{where}: segment format version {version} is not supported (this tool reads versions 1 and 2)"
        )
    if header_len > MAX_HEADER_LEN:
        raise FormatError(f"{where}: corrupt segment header: length field {header_len} is implausible")
    end = _PREFIX.size + header_len + SIGNATURE_LEN
    if len(buf) < end:
        raise TornHeaderError(f"{where}: file ends inside the segment header ({len(buf)} of {end} bytes)")
    header_json = bytes(buf[_PREFIX.size : _PREFIX.size + header_len])
    signature = bytes(buf[_PREFIX.size + header_len : end])
    header = SegmentHeader.decode(header_json, where)
    if header.version != version:
        raise FormatError(f"{where}: segment prefix says format version {version}, its signed header {header.version}")
    return SegmentPrefix(header=header, header_json=header_json, signature=signature, records_offset=end)


# --------------------------------------------------------------------------- checkpoints

_CHECKPOINT = struct.Struct(">BQ32sQ")  # version, sequence, chain head, time_ns


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: after record ``sequence`` of ``segment_id`` the chain head was ``chain_head``.

    The same fields travel in ftrobot_msgs/LogCheckpoint (header.stamp = time_ns) and in the heartbeat.
    """

    robot_id: str
    segment_id: str
    sequence: int
    chain_head: bytes
    time_ns: int
    signature: bytes = b""

    @property
    def chain_head_hex(self) -> str:
        return self.chain_head.hex()

    def signed_bytes(self) -> bytes:
        return checkpoint_signed_bytes(self.robot_id, self.segment_id, self.sequence, self.chain_head, self.time_ns)

    def signed(self, key: ed25519.Ed25519PrivateKey) -> Checkpoint:
        return Checkpoint(
            self.robot_id, self.segment_id, self.sequence, self.chain_head, self.time_ns, key.sign(self.signed_bytes())
        )

    def signature_valid(self, public_key: ed25519.Ed25519PublicKey) -> bool:
        try:
            public_key.verify(self.signature, self.signed_bytes())
        except InvalidSignature:
            return False
        return True

    def encode(self) -> bytes:
        rid = self.robot_id.encode("utf-8")
        sid = self.segment_id.encode("ascii")
        return (
            _CHECKPOINT.pack(1, self.sequence, self.chain_head, self.time_ns)
            + struct.pack(">H", len(rid))
            + rid
            + struct.pack(">H", len(sid))
            + sid
            + self.signature
        )

    @staticmethod
    def decode(payload: bytes, where: str) -> Checkpoint:
        try:
            version, sequence, head, time_ns = _CHECKPOINT.unpack_from(payload, 0)
            pos = _CHECKPOINT.size
            (rlen,) = struct.unpack_from(">H", payload, pos)
            rid = payload[pos + 2 : pos + 2 + rlen].decode("utf-8")
            pos += 2 + rlen
            (slen,) = struct.unpack_from(">H", payload, pos)
            sid = payload[pos + 2 : pos + 2 + slen].decode("ascii")
            pos += 2 + slen
        except (struct.error, UnicodeDecodeError) as exc:
            raise FormatError(f"{where}: checkpoint payload malformed ({exc})") from None
        if version != 1:
            raise UnsupportedVersionError(f"{where}: checkpoint version {version} is not supported")
        signature = payload[pos:]
        if len(signature) != SIGNATURE_LEN:
            raise FormatError(f"{where}: checkpoint signature is {len(signature)} bytes, not 64")
        return Checkpoint(rid, sid, sequence, head, time_ns, signature)


def checkpoint_signed_bytes(robot_id: str, segment_id: str, sequence: int, chain_head: bytes, time_ns: int) -> bytes:
    """Exact bytes an Ed25519 checkpoint signature covers (also for LogCheckpoint messages)."""
    if len(chain_head) != HEAD_LEN:
        raise ValueError("chain head must be 32 bytes")
    rid = robot_id.encode("utf-8")
    sid = segment_id.encode("ascii")
    return (
        CHECKPOINT_SIGN_DOMAIN
        + struct.pack(">H", len(rid))
        + rid
        + struct.pack(">H", len(sid))
        + sid
        + struct.pack(">Q", sequence)
        + chain_head
        + struct.pack(">Q", time_ns)
    )
