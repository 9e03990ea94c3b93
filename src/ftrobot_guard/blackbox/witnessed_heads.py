"""Black-box checkpoints witnessed by the department, their store, and the ``--heads`` file.

A robot's heartbeat carries its latest durable checkpoint (segment id, sequence, chain head); the
heartbeat is signed, so the department monitor keeps each genuine one as a :class:`WitnessedHead`.
``ftrobot log verify --heads FILE`` then tells a cut-off tail (a witnessed record is missing:
TRUNCATION) from a torn, unwitnessed tail after a power cut.

Store (the monitor's ``witnessed_heads_file``): JSON Lines, one head object per line, appended.
Heads file (``ftrobot dept heads`` output, docs/blackbox-format.md "Witnessed heads")::

    {"format": "ftrobot-witnessed-heads", "version": 1,
     "heads": [{"identity_number": "440304-RB-2026-000123-8", "segment_id": "<32 hex>",
                "sequence": 1234, "chain_head": "<64 hex>", "witnessed_at_ns": 1760000000100000000,
                "time_ns": 0, "signature": ""}]}

``time_ns`` and ``signature`` are the checkpoint's own time and Ed25519 signature when the witness
received the full checkpoint (ftrobot_msgs/LogCheckpoint); a heartbeat carries neither (0 and "").
:func:`load_witnessed_heads` reads both the heads file and the store.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.blackbox.errors import BlackBoxError
from ftrobot_guard.blackbox.record_format import HEX64_RE, SEGMENT_ID_RE, Checkpoint

HEADS_FORMAT = "ftrobot-witnessed-heads"
HEADS_VERSION = 1
MAX_HEADS_FILE_BYTES = 256 * 1024 * 1024
_SIG = re.compile(r"^(?:[0-9a-f]{128})?\Z")
_MAX_U64 = (1 << 64) - 1


class WitnessedHeadError(BlackBoxError):
    """A witnessed head, the store or a heads file is malformed or unreadable."""


@dataclass(frozen=True)
class WitnessedHead:
    """The department saw robot ``identity_number`` report: after record ``sequence`` of segment
    ``segment_id`` its chain head was ``chain_head`` (64 lowercase hex digits)."""

    identity_number: str
    segment_id: str
    sequence: int
    chain_head: str
    witnessed_at_ns: int = 0
    time_ns: int = 0
    signature: bytes = b""

    def validate(self, where: str = "witnessed head") -> None:
        """Raise WitnessedHeadError naming the first malformed field."""
        if not isinstance(self.identity_number, str) or not self.identity_number:
            raise WitnessedHeadError(f"{where}: field 'identity_number' must be a non-empty string")
        if not isinstance(self.segment_id, str) or not SEGMENT_ID_RE.match(self.segment_id):
            raise WitnessedHeadError(f"{where}: field 'segment_id' must be 32 lowercase hex digits")
        if not isinstance(self.chain_head, str) or not HEX64_RE.match(self.chain_head):
            raise WitnessedHeadError(f"{where}: field 'chain_head' must be 64 lowercase hex digits")
        for name in ("sequence", "witnessed_at_ns", "time_ns"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_U64:
                raise WitnessedHeadError(f"{where}: field {name!r} must be an integer in 0..2^64-1")
        if self.sequence < 1:
            raise WitnessedHeadError(f"{where}: field 'sequence' must be at least 1")
        if not isinstance(self.signature, bytes) or len(self.signature) not in (0, 64):
            raise WitnessedHeadError(f"{where}: field 'signature' must be empty or 64 bytes")

    def as_checkpoint(self) -> Checkpoint:
        return Checkpoint(self.identity_number, self.segment_id, self.sequence, bytes.fromhex(self.chain_head),
                          self.time_ns, self.signature)

    def signature_valid(self, public_key: ed25519.Ed25519PublicKey) -> bool:
        """True only when the head carries a checkpoint signature that verifies."""
        return bool(self.signature) and self.as_checkpoint().signature_valid(public_key)

    @staticmethod
    def from_checkpoint(checkpoint: Checkpoint, witnessed_at_ns: int = 0) -> WitnessedHead:
        return WitnessedHead(
            identity_number=checkpoint.robot_id,
            segment_id=checkpoint.segment_id,
            sequence=checkpoint.sequence,
            chain_head=checkpoint.chain_head.hex(),
            witnessed_at_ns=witnessed_at_ns,
            time_ns=checkpoint.time_ns,
            signature=checkpoint.signature,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "identity_number": self.identity_number,
            "segment_id": self.segment_id,
            "sequence": self.sequence,
            "chain_head": self.chain_head,
            "witnessed_at_ns": self.witnessed_at_ns,
            "time_ns": self.time_ns,
            "signature": self.signature.hex(),
        }

    @staticmethod
    def from_json(obj: Any, where: str) -> WitnessedHead:
        if not isinstance(obj, dict):
            raise WitnessedHeadError(f"{where}: not a JSON object")
        signature = obj.get("signature", "")
        if not isinstance(signature, str) or not _SIG.match(signature):
            raise WitnessedHeadError(f"{where}: field 'signature' must be 128 hex digits or empty")
        head = WitnessedHead(
            identity_number=obj.get("identity_number"),  # type: ignore[arg-type]
            segment_id=obj.get("segment_id"),  # type: ignore[arg-type]
            sequence=obj.get("sequence"),  # type: ignore[arg-type]
            chain_head=obj.get("chain_head"),  # type: ignore[arg-type]
            witnessed_at_ns=obj.get("witnessed_at_ns", 0),
            time_ns=obj.get("time_ns", 0),
            signature=bytes.fromhex(signature),
        )
        head.validate(where)
        return head

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.identity_number, self.segment_id, self.sequence, self.chain_head)


class WitnessedHeadStore:
    """Heads received by the department monitor; persisted as JSON Lines when given a path.

    :meth:`witness` never raises for what arrives from the network: a malformed head is refused
    (returns False, ``last_error`` says why), so a bad heartbeat cannot stop the monitor."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._heads: dict[tuple[str, str, int, str], WitnessedHead] = {}
        self._lock = threading.Lock()
        self.last_error = ""
        if path is not None and path.exists():
            for head in _load_store(path):
                self._heads.setdefault(head.key, head)

    def witness(self, head: WitnessedHead) -> bool:
        """Keep ``head``; True if it was new and valid."""
        try:
            head.validate()
        except WitnessedHeadError as exc:
            self.last_error = str(exc)
            return False
        with self._lock:
            if head.key in self._heads:
                return False
            self._heads[head.key] = head
            if self.path is not None:
                try:
                    with open(self.path, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(head.to_json(), sort_keys=True) + "\n")
                        handle.flush()
                        os.fsync(handle.fileno())
                except OSError as exc:
                    self.last_error = f"{self.path}: cannot append ({exc.strerror}); head kept in memory"
        return True

    def heads(self, identity_number: str | None = None) -> list[WitnessedHead]:
        with self._lock:
            found = [h for h in self._heads.values() if identity_number is None or h.identity_number == identity_number]
        return sorted(found, key=lambda h: (h.identity_number, h.sequence, h.witnessed_at_ns))

    def __len__(self) -> int:
        return len(self._heads)


def _load_store(path: Path) -> list[WitnessedHead]:
    heads = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise WitnessedHeadError(f"{path}: line {number}: not valid JSON ({exc})") from None
        heads.append(WitnessedHead.from_json(obj, f"{path}: line {number}"))
    return heads


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_HEADS_FILE_BYTES:
            raise WitnessedHeadError(f"{path}: larger than {MAX_HEADS_FILE_BYTES} bytes")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WitnessedHeadError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise WitnessedHeadError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise WitnessedHeadError(f"{path}: cannot read ({exc.strerror})") from None


def heads_document(heads: Iterable[WitnessedHead]) -> dict[str, Any]:
    """The JSON document of a heads file."""
    ordered = sorted(heads, key=lambda h: (h.identity_number, h.sequence, h.witnessed_at_ns))
    return {"format": HEADS_FORMAT, "version": HEADS_VERSION, "heads": [h.to_json() for h in ordered]}


def export_heads(store_path: str | os.PathLike[str], identity_number: str | None = None) -> str:
    """Heads-file text with the heads of one robot (or all) from the monitor's store."""
    path = Path(store_path)
    heads = [h for h in _load_store(path) if identity_number is None or h.identity_number == identity_number]
    if identity_number is not None and not heads:
        raise WitnessedHeadError(f"{path}: no witnessed heads for robot {identity_number}")
    return json.dumps(heads_document(heads), indent=1, sort_keys=True) + "\n"


def write_witnessed_heads(path: str | os.PathLike[str], heads: Iterable[WitnessedHead]) -> Path:
    target = Path(path)
    try:
        target.write_text(json.dumps(heads_document(heads), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise WitnessedHeadError(f"{target}: cannot write ({exc.strerror})") from None
    return target


def parse_heads_document(document: Any, where: str) -> list[WitnessedHead]:
    if not isinstance(document, dict):
        raise WitnessedHeadError(f"{where}: not a JSON object")
    if document.get("format") != HEADS_FORMAT:
        raise WitnessedHeadError(f"{where}: field 'format' must be {HEADS_FORMAT!r}")
    if document.get("version") != HEADS_VERSION:
        raise WitnessedHeadError(
            f"{where}: field 'version' is {document.get('version')!r}; this tool reads version {HEADS_VERSION}"
        )
    raw = document.get("heads")
    if not isinstance(raw, list):
        raise WitnessedHeadError(f"{where}: field 'heads' must be a list")
    return [WitnessedHead.from_json(item, f"{where}: heads[{i}]") for i, item in enumerate(raw)]


def load_witnessed_heads(path: str | os.PathLike[str]) -> list[WitnessedHead]:
    """Read a heads file (``ftrobot dept heads`` output) or a monitor's JSON Lines store."""
    target = Path(path)
    text = _read_text(target)
    try:
        document = json.loads(text)
    except ValueError:
        return _load_store(target)
    if isinstance(document, dict) and "format" in document:
        return parse_heads_document(document, str(target))
    return _load_store(target)
