"""Black-box checkpoints witnessed by the department, their store, and the ``--heads`` file.

A robot's heartbeat carries its latest durable checkpoint (segment id, sequence, chain head); the
heartbeat is signed, so the department monitor keeps each genuine one as a :class:`WitnessedHead`.
``ftrobot log verify --heads FILE`` then tells a cut-off tail (a witnessed record is missing:
TRUNCATION) from a torn, unwitnessed tail after a power cut.

Store (the monitor's ``witnessed_heads_file``): JSON Lines, one head object per line, appended one
batch at a time with one fsync (:meth:`WitnessedHeadStore.flush`).
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
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.blackbox.errors import BlackBoxError
from ftrobot_guard.blackbox.record_format import HEX64_RE, SEGMENT_ID_RE, Checkpoint

HEADS_FORMAT = "ftrobot-witnessed-heads"
HEADS_VERSION = 1
MAX_HEADS_FILE_BYTES = 256 * 1024 * 1024
MAX_STORE_LINE_CHARS = 4096  # one head is about 400
SEGMENTS_KEPT_PER_ROBOT = 4  # in memory; the store file keeps every head
MAX_PENDING_HEADS = 100_000  # witnessed, not yet written: 200 s of 1000 robots' checkpoints every 2 s
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

    :meth:`witness` queues a head; :meth:`flush` (or leaving ``with store:``) writes every queued head
    with one write and one fsync, after which :meth:`heads` shows it: a head is reported as witnessed
    only once it is on disk. A failed write is undone (the file is cut back to its length before it),
    the heads stay queued for the next flush, and ``last_error``/``write_failures`` say so; only more
    than ``max_pending`` queued heads are dropped, oldest first, each counted in ``heads_lost``.

    In memory the store keeps, per robot, the newest head of each of its ``segments_per_robot`` most
    recently witnessed segments (what the monitor shows); the file stays the full record
    (``ftrobot dept heads`` reads it). :meth:`witness` never raises for what arrives from the network:
    a malformed head is refused (returns False, ``last_refusal`` says why), so a bad heartbeat cannot
    stop the monitor."""

    def __init__(self, path: Path | None = None, *, segments_per_robot: int = SEGMENTS_KEPT_PER_ROBOT,
                 max_pending: int = MAX_PENDING_HEADS, fsync: Callable[[int], None] = os.fsync) -> None:
        self.path = path
        self._segments_per_robot = max(1, segments_per_robot)
        self._max_pending = max(1, max_pending)
        self._fsync = fsync
        self._newest: dict[str, OrderedDict[str, WitnessedHead]] = {}
        self._pending: deque[WitnessedHead] = deque()
        self._pending_keys: set[tuple[str, str, int, str]] = set()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.last_error = ""  # the latest write failure or loss
        self.last_refusal = ""  # why the latest malformed head was refused
        self.write_failures = 0
        self.heads_lost = 0
        self.repaired_tail = ""  # what opening the store cut off: an unterminated last line (power cut)
        if path is not None:
            if path.exists():
                self.repaired_tail = _set_aside_torn_tail(path)
                for head in _iter_store(path):
                    self._keep(head)
            else:
                _create_durably(path)

    def witness(self, head: WitnessedHead) -> bool:
        """Queue ``head`` for the next :meth:`flush`; True if it was new and valid."""
        try:
            head.validate()
        except WitnessedHeadError as exc:
            self.last_refusal = str(exc)
            return False
        with self._lock:
            segments = self._newest.get(head.identity_number)
            if segments is not None and head.segment_id in segments and segments[head.segment_id].key == head.key:
                segments.move_to_end(head.segment_id)  # seen again: still one of this robot's recent segments
                return False
            if head.key in self._pending_keys:
                return False
            self._pending.append(head)
            self._pending_keys.add(head.key)
            if len(self._pending) > self._max_pending:
                dropped = self._pending.popleft()
                self._pending_keys.discard(dropped.key)
                self.heads_lost += 1
                self.last_error = (f"{self.path}: {self.heads_lost} witnessed head(s) lost, never written (the queue"
                                   f" holds {self._max_pending}); the oldest was record {dropped.sequence} of"
                                   f" {dropped.identity_number}")
        return True

    def witness_many(self, heads: Iterable[WitnessedHead]) -> int:
        """Witness ``heads`` and flush them; how many were new (see ``last_error`` if the flush failed)."""
        new = sum(self.witness(head) for head in heads)
        self.flush()
        return new

    def flush(self) -> bool:
        """Write every queued head (one write, one fsync) and show them in :meth:`heads`. False if the
        write failed: the heads stay queued and ``last_error`` says why."""
        with self._flush_lock:
            with self._lock:
                batch = list(self._pending)
            if not batch:
                return True
            if self.path is not None:
                data = "".join(json.dumps(h.to_json(), sort_keys=True) + "\n" for h in batch).encode("utf-8")
                try:
                    self._append(data)
                except OSError as exc:
                    self.write_failures += 1
                    self.last_error = (f"{self.path}: cannot append ({exc.strerror or exc}); {len(self._pending)}"
                                       " witnessed head(s) kept queued for the next write")
                    return False
            with self._lock:
                for head in batch:
                    self._pending.popleft()
                    self._pending_keys.discard(head.key)
                    self._keep(head)
        return True

    def __enter__(self) -> WitnessedHeadStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush()

    def _append(self, data: bytes) -> None:
        assert self.path is not None
        with open(self.path, "ab") as handle:
            size = os.fstat(handle.fileno()).st_size
            try:
                handle.write(data)
                handle.flush()
                self._fsync(handle.fileno())
            except OSError:
                try:  # leave no torn or unsynced line behind; the whole batch is written again next time
                    os.ftruncate(handle.fileno(), size)
                except OSError:
                    pass
                raise

    def _keep(self, head: WitnessedHead) -> None:
        segments = self._newest.setdefault(head.identity_number, OrderedDict())
        kept = segments.get(head.segment_id)
        if kept is None or head.sequence >= kept.sequence:
            segments[head.segment_id] = head
        segments.move_to_end(head.segment_id)
        while len(segments) > self._segments_per_robot:
            segments.popitem(last=False)

    def heads(self, identity_number: str | None = None) -> list[WitnessedHead]:
        """The newest durable head of each recent segment (of one robot, or all)."""
        with self._lock:
            if identity_number is None:
                found = [h for segments in self._newest.values() for h in segments.values()]
            else:
                found = list(self._newest.get(identity_number, OrderedDict()).values())
        return sorted(found, key=lambda h: (h.identity_number, h.sequence, h.witnessed_at_ns))

    @property
    def pending(self) -> int:
        """Heads witnessed but not yet on disk."""
        return len(self._pending)

    def __len__(self) -> int:
        """Heads kept in memory (bounded: robots x ``segments_per_robot``)."""
        with self._lock:
            return sum(len(segments) for segments in self._newest.values())


def _create_durably(path: Path) -> None:
    """Create an empty store file and make its directory entry durable."""
    path.touch(exist_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _set_aside_torn_tail(path: Path) -> str:
    """Cut an unterminated last line off the store, keeping its bytes beside it; what was done, or "".

    :meth:`WitnessedHeadStore.flush` writes whole lines and shows a head only after the fsync, so
    bytes after the last newline are a write a power cut interrupted: heads never reported as
    witnessed. They are moved to ``<store>.torn-<ns>`` (not deleted) and the store is cut back to its
    last complete line, so the monitor starts and appends on a fresh line.
    """
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return ""
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return ""
        start = max(0, size - 2 * MAX_STORE_LINE_CHARS)
        handle.seek(start)
        tail = handle.read()
        if b"\n" in tail:
            cut = start + tail.rfind(b"\n") + 1
        elif start == 0:
            cut = 0  # the whole store is one unfinished line
        else:
            raise WitnessedHeadError(f"{path}: the last line is longer than {MAX_STORE_LINE_CHARS} characters")
        handle.seek(cut)
        torn = handle.read()
        kept = path.with_name(f"{path.name}.torn-{time.time_ns()}")
        with open(kept, "xb") as aside:
            aside.write(torn)
            aside.flush()
            os.fsync(aside.fileno())
        handle.truncate(cut)
        handle.flush()
        os.fsync(handle.fileno())
    return (f"{path}: cut {len(torn)} bytes of an unfinished last line (a write interrupted by a power cut;"
            f" never reported as witnessed), kept in {kept.name}")


def _iter_store(path: Path) -> Iterator[WitnessedHead]:
    """The heads of a store, read line by line (the store grows without limit; memory does not)."""
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if len(line) > MAX_STORE_LINE_CHARS:
                    raise WitnessedHeadError(f"{path}: line {number}: longer than {MAX_STORE_LINE_CHARS} characters")
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise WitnessedHeadError(f"{path}: line {number}: not valid JSON ({exc})") from None
                yield WitnessedHead.from_json(obj, f"{path}: line {number}")
    except FileNotFoundError:
        raise WitnessedHeadError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise WitnessedHeadError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise WitnessedHeadError(f"{path}: cannot read ({exc.strerror})") from None


def _load_store(path: Path) -> list[WitnessedHead]:
    return list(_iter_store(path))


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
    heads = [h for h in _iter_store(path) if identity_number is None or h.identity_number == identity_number]
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
