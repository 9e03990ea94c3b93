"""The rules a CHECKPOINT or CLOSE record must meet at its place in a segment (docs/blackbox-format.md §5).

One set of rules for crash recovery (which stops at the first record that breaks one) and for
verification (which turns each broken rule into a diagnosis): the payload decodes, the signature
verifies under the robot key, it names this segment and robot, it covers the record just before it,
and its chain head is the head after that record."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.blackbox.errors import FormatError
from ftrobot_guard.blackbox.record_format import Checkpoint, ParsedRecord, SegmentHeader


class CheckpointFault(enum.Enum):
    """A rule a checkpoint record breaks."""

    MALFORMED = "payload malformed"
    BAD_SIGNATURE = "signature invalid"
    FOREIGN = "names another segment or robot"
    WRONG_SEQUENCE = "covers another record than the one before it"
    HEAD_MISMATCH = "chain head differs from the records before it"


_NOT_AUTHENTIC = frozenset({CheckpointFault.MALFORMED, CheckpointFault.BAD_SIGNATURE, CheckpointFault.FOREIGN})


@dataclass(frozen=True)
class CheckpointCheck:
    """What one checkpoint record says and which rules it breaks (none: it seals the records before it)."""

    checkpoint: Checkpoint | None  # None when the payload does not decode
    faults: tuple[CheckpointFault, ...]
    detail: str  # the decode error, or the covered and expected sequences

    @property
    def ok(self) -> bool:
        return not self.faults

    @property
    def authentic(self) -> bool:
        """Decoded, signed by the robot key and naming this segment: its chain head can be trusted
        even where the records before it are damaged."""
        return self.checkpoint is not None and not _NOT_AUTHENTIC.intersection(self.faults)

    def describe(self) -> str:
        return "; ".join(f"{fault.value} ({self.detail})" if self.detail and fault in (
            CheckpointFault.MALFORMED, CheckpointFault.WRONG_SEQUENCE) else fault.value for fault in self.faults)


def check_checkpoint(
    record: ParsedRecord,
    header: SegmentHeader,
    covered: int,
    head: bytes,
    public_key: ed25519.Ed25519PublicKey | None,
) -> CheckpointCheck:
    """Check the CHECKPOINT/CLOSE ``record`` of the segment with ``header``; ``covered`` is the
    sequence of the record before it and ``head`` the chain head after that record. Without a
    ``public_key`` no signature can be trusted (BAD_SIGNATURE)."""
    try:
        cp = Checkpoint.decode(record.payload, "checkpoint")
    except FormatError as exc:
        return CheckpointCheck(None, (CheckpointFault.MALFORMED,), str(exc))
    if public_key is None or not cp.signature_valid(public_key):
        return CheckpointCheck(cp, (CheckpointFault.BAD_SIGNATURE,), "")
    if cp.segment_id != header.segment_id or cp.robot_id != header.robot_id:
        return CheckpointCheck(cp, (CheckpointFault.FOREIGN,), "")
    faults = []
    if cp.sequence != covered:
        faults.append(CheckpointFault.WRONG_SEQUENCE)
    if cp.chain_head != head:
        faults.append(CheckpointFault.HEAD_MISMATCH)
    return CheckpointCheck(cp, tuple(faults), f"covers sequence {cp.sequence}, expected {covered}")
