"""Sealing records into one segment file (append-only, fsync on demand, rollback on write errors)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ftrobot_guard.blackbox.durable_files import describe_os_error, fsync_directory, write_all
from ftrobot_guard.blackbox.errors import LogWriteError
from ftrobot_guard.blackbox.payload_codec import PayloadEncoder, PayloadEncoding, SegmentDictionary, seal_dictionary
from ftrobot_guard.blackbox.record_format import (
    Checkpoint,
    RecordType,
    SegmentHeader,
    chain_next,
    chain_start,
    counter_nonce,
    data_aad,
    encode_record_with_header,
    encode_segment_prefix,
    record_header_bytes,
    segment_file_name,
    sign_header,
)

_ZERO_NONCE = bytes(12)


@dataclass(frozen=True)
class SealedBatch:
    """Records built in memory, not yet written: applied to the writer's state only after writing."""

    parts: tuple[bytes, ...]  # the records' bytes, in order
    last_sequence: int
    head: bytes
    records: int
    checkpoints: tuple[Checkpoint, ...]
    closes: bool

    @property
    def size(self) -> int:
        return sum(len(part) for part in self.parts)


class SegmentWriter:
    """Writes one segment: its signed header, then sealed DATA and signed CHECKPOINT/CLOSE records."""

    def __init__(
        self,
        directory: Path,
        header: SegmentHeader,
        signing_key: ed25519.Ed25519PrivateKey,
        data_key: bytes,
        compress_level: int = 1,
        payload_encoding: PayloadEncoding | str = PayloadEncoding.ZSTD,
        previous: SegmentWriter | None = None,
    ) -> None:
        """``payload_encoding`` decides the format version (zlib: 1, zstd: 2); ``compress_level`` 0
        stores blocks uncompressed (otherwise it is zlib's level; zstd uses payload_codec.ZSTD_LEVEL).
        With zstd, the segment dictionary is built from what ``previous`` (the segment before this
        one, if this writer wrote it) has sealed, and sealed into this segment's header."""
        encoding = PayloadEncoding(payload_encoding)
        self._aead = AESGCM(data_key)
        dictionary: SegmentDictionary | None = None
        generation = 0
        if encoding is PayloadEncoding.ZSTD and previous is not None:
            dictionary = previous.next_dictionary()
            generation = min(previous.dictionary_generation + 1, 2)
        sealed = seal_dictionary(self._aead, header.segment_id_raw, dictionary) if dictionary is not None else ""
        header = dataclasses.replace(header, version=encoding.format_version, dictionary=sealed)
        self._payload = PayloadEncoder(encoding, compress_level, dictionary, generation)
        self.header = header
        self.path = directory / segment_file_name(header.segment_index, header.segment_id)
        self._key = signing_key
        self._robot_id = header.robot_id
        self._segment_id_raw = header.segment_id_raw
        header_json = header.encode()
        signature = sign_header(signing_key, header_json)
        prefix = encode_segment_prefix(header_json, signature, header.version)
        self.head = chain_start(bytes.fromhex(header.prev_chain_head), header_json, signature)
        self.next_sequence = header.first_sequence
        self.records_since_checkpoint = 0
        self.closed = False
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        except OSError as exc:
            raise LogWriteError(describe_os_error(self.path, exc, "creating a segment")) from None
        try:
            write_all(self._fd, prefix)
            os.fsync(self._fd)
            fsync_directory(directory)
        except OSError as exc:
            os.close(self._fd)
            self.path.unlink(missing_ok=True)
            raise LogWriteError(describe_os_error(self.path, exc, "writing a segment header")) from None
        self.size = len(prefix)

    def next_dictionary(self) -> SegmentDictionary | None:
        """Dictionary for the segment after this one, from what this one sealed (None: too little)."""
        return self._payload.next_dictionary()

    @property
    def dictionary_generation(self) -> int:
        """0: no dictionary; 1: a first one, seeded right after a start; 2: the steady state."""
        return self._payload.generation

    @property
    def wants_rotation(self) -> bool:
        """True when a clearly better dictionary can be built than this segment's: rotating now lets the
        rest of the recording use it (at most twice after a writer starts, then only by size and age)."""
        return self._payload.wants_new_dictionary

    # ------------------------------------------------------------------ sealing (pure, in memory)

    def seal(
        self, blocks: list[tuple[bytes, int]], checkpoint_time_ns: int | None, close: bool = False,
        after: SealedBatch | None = None,
    ) -> SealedBatch:
        """Seal entry blocks ``(entries bytes, time_ns)`` into DATA records, then optionally a signed
        CHECKPOINT (or CLOSE when ``close``) at ``checkpoint_time_ns``. With ``after`` (a batch sealed
        but not yet written) the records continue it, and the result holds both."""
        parts: list[bytes] = list(after.parts) if after is not None else []
        sequence = after.last_sequence + 1 if after is not None else self.next_sequence
        head = after.head if after is not None else self.head
        aead = self._aead
        robot_id = self._robot_id
        sid = self._segment_id_raw
        compact = self.header.version >= 2  # version 2 frames leave out the nonce (derived from the sequence)
        for entry_bytes, time_ns in blocks:
            plaintext = self._payload.encode(entry_bytes, time_ns)
            nonce = counter_nonce(sequence)
            rec_head = record_header_bytes(len(plaintext) + 16, RecordType.DATA, sequence, time_ns, nonce, compact)
            sealed = aead.encrypt(nonce, plaintext, data_aad(robot_id, sid, rec_head))
            record = encode_record_with_header(rec_head, sealed)
            head = chain_next(head, record)
            parts.append(record)
            sequence += 1
        checkpoints: list[Checkpoint] = list(after.checkpoints) if after is not None else []
        if checkpoint_time_ns is not None or close:
            when = checkpoint_time_ns if checkpoint_time_ns is not None else 0
            cp = Checkpoint(robot_id, self.header.segment_id, sequence - 1, head, when).signed(self._key)
            payload = cp.encode()
            rtype = RecordType.CLOSE if close else RecordType.CHECKPOINT
            rec_head = record_header_bytes(len(payload), rtype, sequence, when, _ZERO_NONCE, compact)
            record = encode_record_with_header(rec_head, payload)
            head = chain_next(head, record)
            parts.append(record)
            sequence += 1
            checkpoints.append(cp)
        return SealedBatch(
            parts=tuple(parts),
            last_sequence=sequence - 1,
            head=head,
            records=len(parts),
            checkpoints=tuple(checkpoints),
            closes=close,
        )

    # ------------------------------------------------------------------ I/O

    def write(self, batch: SealedBatch) -> None:
        """Append a sealed batch; on failure, cut the file back so no half record stays behind."""
        if self.closed:
            raise LogWriteError(f"{self.path}: segment already closed")
        if not batch.parts:
            return
        data = b"".join(batch.parts)
        try:
            write_all(self._fd, data)
        except OSError as exc:
            message = describe_os_error(self.path, exc, "appending records")
            try:
                os.ftruncate(self._fd, self.size)
            except OSError:
                message += "; could not cut back the partial write (recovery will on restart)"
            raise LogWriteError(message) from None
        self.size += len(data)
        self.next_sequence = batch.last_sequence + 1
        self.head = batch.head
        data_records = batch.records - len(batch.checkpoints)
        self.records_since_checkpoint = 0 if batch.checkpoints else self.records_since_checkpoint + data_records
        if batch.closes:
            self.closed = True

    def sync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise LogWriteError(describe_os_error(self.path, exc, "syncing to disk")) from None

    def release(self) -> None:
        """Close the file descriptor (after a CLOSE record, or when abandoning the segment)."""
        if self._fd >= 0:
            try:
                os.close(self._fd)
            finally:
                self._fd = -1
