"""Signed deletion manifests: which segments retention deleted and where their chain ended, so the
rest of the log still verifies (deletions/<number>.json, docs/blackbox-format.md)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.blackbox.durable_files import describe_os_error, write_new_file
from ftrobot_guard.blackbox.errors import FormatError, LogWriteError
from ftrobot_guard.blackbox.record_format import HEX64_RE, SEGMENT_ID_RE, canonical_json
from ftrobot_guard.blackbox.segment_reader import DELETIONS_DIR

MANIFEST_FORMAT = "ftrobot-blackbox-deletions"
MANIFEST_VERSION = 1
MANIFEST_SIGN_DOMAIN = b"ftrobot-blackbox-deletions-v1\x00"
_NAME = re.compile(r"^(\d{6,})\.json\Z")


@dataclass(frozen=True)
class DeletedSegment:
    segment_index: int
    segment_id: str
    first_sequence: int
    last_sequence: int
    final_head: str  # hex chain head after the segment's last record
    created_ns: int
    last_time_ns: int
    size: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @staticmethod
    def from_json(obj: Any, where: str) -> DeletedSegment:
        if not isinstance(obj, dict):
            raise FormatError(f"{where}: deleted segment is not an object")
        try:
            item = DeletedSegment(**{name: obj[name] for name in DeletedSegment.__dataclass_fields__})
        except (KeyError, TypeError) as exc:
            raise FormatError(f"{where}: deleted segment lacks field {exc}") from None
        for name in ("segment_index", "first_sequence", "last_sequence", "created_ns", "last_time_ns", "size"):
            value = getattr(item, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise FormatError(f"{where}: field {name!r} is not a non-negative integer")
        if not isinstance(item.final_head, str) or not HEX64_RE.match(item.final_head):
            raise FormatError(f"{where}: field 'final_head' is not 64 hex digits")
        if not isinstance(item.segment_id, str) or not SEGMENT_ID_RE.match(item.segment_id):
            raise FormatError(f"{where}: field 'segment_id' is not 32 hex digits")
        return item


@dataclass(frozen=True)
class DeletionManifest:
    path: Path
    robot_id: str
    robot_key: str
    log_id: str
    time_ns: int
    reason: str
    deleted: tuple[DeletedSegment, ...]
    signature_ok: bool


def _body(robot_id: str, robot_key: str, log_id: str, time_ns: int, reason: str,
          deleted: list[DeletedSegment]) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "robot_id": robot_id,
        "robot_key": robot_key,
        "log_id": log_id,
        "time_ns": time_ns,
        "reason": reason,
        "deleted": [d.to_json() for d in deleted],
    }


def write_deletion_manifest(
    directory: Path,
    signing_key: ed25519.Ed25519PrivateKey,
    robot_id: str,
    log_id: str,
    time_ns: int,
    reason: str,
    deleted: list[DeletedSegment],
) -> Path:
    """Write the next numbered manifest (fsynced) before any segment it lists is deleted."""
    robot_key = signing_key.public_key().public_bytes_raw().hex()
    body = _body(robot_id, robot_key, log_id, time_ns, reason, deleted)
    signature = signing_key.sign(MANIFEST_SIGN_DOMAIN + canonical_json(body))
    document = dict(body, signature=signature.hex())
    folder = directory / DELETIONS_DIR
    try:
        folder.mkdir(exist_ok=True)
        numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    except OSError as exc:
        raise LogWriteError(describe_os_error(folder, exc, "writing a deletion manifest")) from None
    path = folder / f"{(max(numbers) + 1) if numbers else 1:06d}.json"
    write_new_file(path, (json.dumps(document, sort_keys=True, indent=1) + "\n").encode("ascii"), 0o640,
                   "writing a deletion manifest")
    return path


def load_deletion_manifests(directory: Path, public_key: ed25519.Ed25519PublicKey | None) -> tuple[
    list[DeletionManifest], list[str]
]:
    """All manifests of a log (signature checked when ``public_key`` is given) and the problems."""
    folder = directory / DELETIONS_DIR
    if not folder.is_dir():
        return [], []
    manifests: list[DeletionManifest] = []
    problems: list[str] = []
    for path in sorted(folder.iterdir()):
        if not path.name.endswith(".json"):
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(document, dict):
                raise FormatError("not a JSON object")
            if document.get("format") != MANIFEST_FORMAT:
                raise FormatError(f"field 'format' is not {MANIFEST_FORMAT!r}")
            if document.get("version") != MANIFEST_VERSION:
                raise FormatError(f"version {document.get('version')!r} not supported (this tool reads 1)")
            deleted = [DeletedSegment.from_json(d, str(path)) for d in document.get("deleted", [])]
            body = _body(str(document.get("robot_id", "")), str(document.get("robot_key", "")),
                         str(document.get("log_id", "")), int(document.get("time_ns", 0)),
                         str(document.get("reason", "")), deleted)
            signature = bytes.fromhex(str(document.get("signature", "")))
        except (OSError, UnicodeDecodeError, ValueError, FormatError) as exc:
            problems.append(f"{path}: unreadable deletion manifest ({exc})")
            continue
        ok = False
        if public_key is not None:
            try:
                public_key.verify(signature, MANIFEST_SIGN_DOMAIN + canonical_json(body))
                ok = True
            except InvalidSignature:
                ok = False
        manifests.append(
            DeletionManifest(path, body["robot_id"], body["robot_key"], body["log_id"], body["time_ns"],
                             body["reason"], tuple(deleted), ok)
        )
    return manifests, problems
