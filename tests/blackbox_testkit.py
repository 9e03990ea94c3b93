"""Shared helpers of the black-box tests: keys in tmp_path, small logs, byte-level tampering."""

from __future__ import annotations

import itertools
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from ftrobot_guard.blackbox.log_writer import LogWriter, WriterKeys, WriterPolicy
from ftrobot_guard.blackbox.record_format import (
    Checkpoint,
    ParsedRecord,
    RecordType,
    SegmentPrefix,
    Tier,
    chain_next,
    chain_start,
    frame_header_len,
    parse_segment_prefix,
)
from ftrobot_guard.blackbox.segment_reader import scan_records
from ftrobot_guard.trust.keys import write_private_key, write_public_key

if TYPE_CHECKING:
    from ftrobot_guard.blackbox.witnessed_heads import WitnessedHead

ROBOT_ID = "440304-RB-2026-000123-8"
OTHER_ROBOT_ID = "440304-RB-2026-000124-6"
BASE_NS = 1_780_000_000_000_000_000  # 2026-05-28


@dataclass
class LogKeys:
    signing: ed25519.Ed25519PrivateKey
    auditor: x25519.X25519PrivateKey
    robot_x: x25519.X25519PrivateKey
    robot_id: str = ROBOT_ID

    def writer_keys(self, robot_copy: bool = False) -> WriterKeys:
        return WriterKeys(
            self.robot_id,
            self.signing,
            (self.auditor.public_key(),),
            self.robot_x.public_key() if robot_copy else None,
        )

    def save(self, folder: Path) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        return {
            "robot_key": write_private_key(folder / "robot_ed25519.pem", self.signing),
            "robot_pub": write_public_key(folder / "robot_ed25519.pub.pem", self.signing.public_key()),
            "robot_x": write_private_key(folder / "robot_x25519.pem", self.robot_x),
            "auditor_key": write_private_key(folder / "auditor_x25519.pem", self.auditor),
            "auditor_pub": write_public_key(folder / "auditor_x25519.pub.pem", self.auditor.public_key()),
        }


def make_keys(robot_id: str = ROBOT_ID) -> LogKeys:
    return LogKeys(ed25519.Ed25519PrivateKey.generate(), x25519.X25519PrivateKey.generate(),
                    x25519.X25519PrivateKey.generate(), robot_id)


class FakeClock:
    """Deterministic clock: every call advances ``step_ns``."""

    def __init__(self, start_ns: int = BASE_NS, step_ns: int = 1_000_000) -> None:
        self._counter = itertools.count()
        self.start = start_ns
        self.step = step_ns
        self.offset = 0

    def __call__(self) -> int:
        return self.start + self.offset + next(self._counter) * self.step


SMALL_POLICY = WriterPolicy(checkpoint_every_records=4, segment_max_bytes=16 * 1024, block_max_bytes=2048)


def write_log(
    directory: Path,
    keys: LogKeys,
    entries: int = 300,
    policy: WriterPolicy = SMALL_POLICY,
    flush_every: int = 5,
    close: bool = True,
    robot_copy: bool = False,
    clock: FakeClock | None = None,
    payload_size: int = 300,
) -> LogWriter:
    """A log of ``entries`` JSON-ish payloads (entry i holds its number), flushed every few entries."""
    writer = LogWriter(directory, keys.writer_keys(robot_copy), policy, clock or FakeClock())
    writer.open()
    for i in range(entries):
        body = f"entry {i:08d} ".encode() + os.urandom(payload_size // 2) + bytes(payload_size // 2)
        writer.append_message("/joint_states" if i % 3 else "/safety_state", "std_msgs/msg/String", body,
                              guardian="G-0001", tier=Tier.LONG_TERM if i % 3 else Tier.EVENT)
        if i % flush_every == flush_every - 1:
            writer.flush()
    if close:
        writer.close()
    else:
        writer.flush()
    return writer


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.ftbb"))


def parse(path: Path) -> tuple[SegmentPrefix, list[ParsedRecord], bytes]:
    data = path.read_bytes()
    prefix = parse_segment_prefix(data, str(path))
    return prefix, scan_records(data, prefix.records_offset, prefix.header.first_sequence).records, data


def fix_crc(raw: bytes) -> bytes:
    body = raw[:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def rebuild(path: Path, prefix: SegmentPrefix, records: list[bytes]) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: prefix.records_offset] + b"".join(records))


def resign_checkpoints(path: Path, key: ed25519.Ed25519PrivateKey, records: list[bytes]) -> list[bytes]:
    """What an attacker holding the robot key does after editing records: recompute the chain and
    re-sign every checkpoint so the segment is self-consistent again."""
    data = path.read_bytes()
    prefix = parse_segment_prefix(data, str(path))
    head = chain_start(bytes.fromhex(prefix.header.prev_chain_head), prefix.header_json, prefix.signature)
    out = []
    for raw in records:
        rtype = raw[4]
        if rtype in (RecordType.CHECKPOINT, RecordType.CLOSE):
            at = frame_header_len(raw[5])
            old = Checkpoint.decode(raw[at:-4], "cp")
            new = Checkpoint(old.robot_id, old.segment_id, old.sequence, head, old.time_ns).signed(key)
            raw_record = fix_crc(raw[:at] + new.encode() + b"\0\0\0\0")
        else:
            raw_record = raw
        out.append(raw_record)
        head = chain_next(head, raw_record)
    return out


def flip_bit(data: bytes, offset: int, bit: int = 0) -> bytes:
    return data[:offset] + bytes([data[offset] ^ (1 << bit)]) + data[offset + 1 :]


def heads_from_log(directory: Path) -> list[WitnessedHead]:
    """Witnessed heads as the department would have received them: every checkpoint on disk."""
    from ftrobot_guard.blackbox.witnessed_heads import WitnessedHead

    heads = []
    for path in segments(directory):
        _prefix, records, _data = parse(path)
        for record in records:
            if record.record_type in (RecordType.CHECKPOINT, RecordType.CLOSE):
                cp = Checkpoint.decode(record.payload, "cp")
                heads.append(WitnessedHead.from_checkpoint(cp, witnessed_at_ns=cp.time_ns + 1))
    return heads
