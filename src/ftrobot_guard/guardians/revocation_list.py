"""The department-signed list of revoked guardian certificates (clauses 2.7, 6.3).

A guardian who leaves, loses a key or must no longer command a robot is revoked by the department: it
issues a new revocation list, signed with its CA key, and the list reaches each robot as a file. A
command from a revoked guardian is refused even though the certificate is still within its validity.

The file is a JSON document (YAML is read too)::

    {"issuer": "<SHA-256 hex of the department CA certificate>",
     "sequence": 7,                                  # strictly increasing per issuer
     "issued_at": "2026-03-01T08:00:00+00:00",
     "revoked": [{"guardian_id": "G-0007", "certificate_fingerprint": "",   # "" = every certificate
                  "revoked_at": "2026-03-01T07:55:00+00:00", "reason": "left the service centre"}],
     "signature": "<base64 Ed25519 signature>"}

The signature is over :func:`~ftrobot_guard.trust.signed_fields.canonical_bytes` of every other field,
normalised (times as ISO 8601 UTC strings, so a YAML timestamp and a string of the same instant agree),
under the domain :data:`REVOCATION_DOMAIN`, by the key of the trusted CA whose certificate fingerprint is
``issuer``. An entry revokes at once, whatever its ``revoked_at`` (which is recorded, not enforced).

:class:`RevocationListFile` follows the file on disk: :meth:`~RevocationListFile.refresh` re-reads it when
it changed (inode, size or mtime). A list that does not verify, or whose sequence is lower than the one
in force (a rollback, which would un-revoke), is not taken: the last valid list stays in force and the
problem is reported (so is a list from another CA than the one in force). A missing file means no
revocation until a list has been loaded; after that, the last list stays in force (deleting the file
un-revokes nobody). The highest sequence is not persisted: after a restart the first valid list is taken.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.trust.certificates import certificate_fingerprint
from ftrobot_guard.trust.signed_fields import sign_fields, verify_fields

REVOCATION_DOMAIN = "ftrobot/guardian_revocations/v1"
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_ENTRIES = 100_000
MAX_TEXT = 256
_FIELDS = frozenset({"issuer", "sequence", "issued_at", "revoked", "signature"})
_ENTRY_FIELDS = frozenset({"guardian_id", "certificate_fingerprint", "revoked_at", "reason"})


class RevocationListError(ValueError):
    """A revocation list is ill-formed, untrusted or forged; the message (one line) says which."""


@dataclass(frozen=True)
class RevocationEntry:
    """One revoked guardian (every certificate of ``guardian_id`` when ``certificate_fingerprint`` is "")."""

    guardian_id: str
    certificate_fingerprint: str
    revoked_at: dt.datetime
    reason: str

    def __post_init__(self) -> None:
        if not isinstance(self.guardian_id, str) or not self.guardian_id or len(self.guardian_id) > MAX_TEXT:
            raise RevocationListError("an entry's guardian_id must be a non-empty string")
        fingerprint = self.certificate_fingerprint
        if not isinstance(fingerprint, str) or (fingerprint and not _is_fingerprint(fingerprint)):
            raise RevocationListError(
                f"entry {self.guardian_id}: certificate_fingerprint must be \"\" or 64 lower-case hex digits"
            )
        if not isinstance(self.revoked_at, dt.datetime) or self.revoked_at.tzinfo is None:
            raise RevocationListError(f"entry {self.guardian_id}: revoked_at must be a timezone-aware time")
        if not isinstance(self.reason, str) or len(self.reason) > MAX_TEXT:
            raise RevocationListError(f"entry {self.guardian_id}: reason must be a string of at most {MAX_TEXT}")

    def matches(self, guardian_id: str, certificate_fingerprint: str) -> bool:
        return self.guardian_id == guardian_id and self.certificate_fingerprint in ("", certificate_fingerprint)

    def fields(self) -> dict[str, Any]:
        return {"guardian_id": self.guardian_id, "certificate_fingerprint": self.certificate_fingerprint,
                "revoked_at": _iso(self.revoked_at), "reason": self.reason}


@dataclass(frozen=True)
class RevocationList:
    """A verified revocation list (``sequence`` 0, no issuer and no entry: the empty list before any file)."""

    issuer: str
    sequence: int
    issued_at: dt.datetime | None
    entries: tuple[RevocationEntry, ...]

    @classmethod
    def empty(cls) -> RevocationList:
        return cls("", 0, None, ())

    def is_revoked(self, guardian_id: str, certificate_fingerprint: str) -> RevocationEntry | None:
        """The entry revoking this guardian's certificate, or None."""
        for entry in self.entries:
            if entry.matches(guardian_id, certificate_fingerprint):
                return entry
        return None


def _is_fingerprint(text: str) -> bool:
    return len(text) == 64 and all(ch in "0123456789abcdef" for ch in text)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def _time(what: str, value: object) -> dt.datetime:
    if isinstance(value, str):
        text = value
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise RevocationListError(f"{what} {text[:40]!r} is not an ISO 8601 time") from None
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise RevocationListError(f"{what} must be an ISO 8601 time with its UTC offset")
    return value


def _signed_fields(issuer: str, sequence: int, issued_at: dt.datetime,
                   entries: Iterable[RevocationEntry]) -> dict[str, Any]:
    return {"issuer": issuer, "sequence": sequence, "issued_at": _iso(issued_at),
            "revoked": [entry.fields() for entry in entries]}


def issue_revocation_list(
    ca_cert: x509.Certificate,
    ca_key: ed25519.Ed25519PrivateKey,
    entries: Sequence[RevocationEntry],
    sequence: int,
    issued_at: dt.datetime,
) -> bytes:
    """The signed revocation list file (JSON, UTF-8) of department ``ca_cert``/``ca_key``."""
    if not isinstance(ca_key, ed25519.Ed25519PrivateKey):
        raise ValueError("the CA key must be an Ed25519 private key")
    if ca_cert.public_key() != ca_key.public_key():
        raise ValueError("CA key does not match the CA certificate's public key")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise ValueError("sequence must be a positive integer")
    if not isinstance(issued_at, dt.datetime) or issued_at.tzinfo is None:
        raise ValueError("issued_at must be a timezone-aware datetime")
    for entry in entries:
        if not isinstance(entry, RevocationEntry):
            raise ValueError(f"entries must be RevocationEntry, got {type(entry).__name__}")
    fields = _signed_fields(certificate_fingerprint(ca_cert), sequence, issued_at, entries)
    signature = sign_fields(ca_key, REVOCATION_DOMAIN, fields)
    document = {**fields, "signature": base64.b64encode(signature).decode("ascii")}
    return (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def _parse_document(data: bytes) -> Mapping[str, Any]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RevocationListError("a revocation list is bytes")
    if len(data) > MAX_FILE_BYTES:
        raise RevocationListError(f"revocation list is {len(data)} bytes, more than {MAX_FILE_BYTES}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise RevocationListError("revocation list is not UTF-8") from None
    try:
        document = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RevocationListError(f"revocation list is not valid JSON/YAML: {first}") from None
    if not isinstance(document, dict):
        raise RevocationListError("a revocation list is a mapping")
    if set(document) != _FIELDS:
        raise RevocationListError(f"a revocation list has exactly the fields {', '.join(sorted(_FIELDS))}")
    return document


def _entry(index: int, raw: object) -> RevocationEntry:
    if not isinstance(raw, dict) or set(raw) != _ENTRY_FIELDS:
        raise RevocationListError(
            f"revoked[{index}] must have exactly the fields {', '.join(sorted(_ENTRY_FIELDS))}")
    for name in ("guardian_id", "certificate_fingerprint", "reason"):
        if not isinstance(raw[name], str):
            raise RevocationListError(f"revoked[{index}].{name} must be a string")
    return RevocationEntry(raw["guardian_id"], raw["certificate_fingerprint"],
                           _time(f"revoked[{index}].revoked_at", raw["revoked_at"]), raw["reason"])


def load_revocation_list(data: bytes, trusted_ca_certs: Sequence[x509.Certificate]) -> RevocationList:
    """Verify and read a revocation list file; :class:`RevocationListError` when it is not to be trusted."""
    document = _parse_document(data)
    issuer, sequence = document["issuer"], document["sequence"]
    if not isinstance(issuer, str) or not _is_fingerprint(issuer):
        raise RevocationListError("issuer must be the CA certificate's SHA-256 fingerprint (64 hex digits)")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise RevocationListError("sequence must be a positive integer")
    issued_at = _time("issued_at", document["issued_at"])
    revoked = document["revoked"]
    if revoked is None:
        revoked = []
    if not isinstance(revoked, list) or len(revoked) > MAX_ENTRIES:
        raise RevocationListError(f"revoked must be a list of at most {MAX_ENTRIES} entries")
    entries = tuple(_entry(index, raw) for index, raw in enumerate(revoked))
    ca = next((c for c in trusted_ca_certs if certificate_fingerprint(c) == issuer), None)
    if ca is None:
        raise RevocationListError(f"issuer {issuer[:16]}… is not a trusted department CA")
    key = ca.public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise RevocationListError("the issuing CA's key is not Ed25519")
    encoded = document["signature"]
    try:
        signature = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
    except (binascii.Error, ValueError):
        signature = b""
    if not verify_fields(key, REVOCATION_DOMAIN, _signed_fields(issuer, sequence, issued_at, entries), signature):
        raise RevocationListError(f"signature does not verify with the key of CA {issuer[:16]}…")
    return RevocationList(issuer, sequence, issued_at, entries)


@dataclass(frozen=True)
class _FileStamp:
    inode: int
    size: int
    mtime_ns: int


class RevocationListFile:
    """The revocation list in force, followed on disk at ``path``. Calling it returns :attr:`current`."""

    def __init__(self, path: str | os.PathLike[str], trusted_ca_certs: Sequence[x509.Certificate]) -> None:
        self._path = Path(path)
        self._cas = tuple(trusted_ca_certs)
        self._current = RevocationList.empty()
        self._stamp: _FileStamp | None = None
        self._loaded_once = False
        self._problem = ""

    @property
    def path(self) -> Path:
        return self._path

    @property
    def current(self) -> RevocationList:
        return self._current

    @property
    def problem(self) -> str:
        """Why the file on disk is not the list in force ("" when it is)."""
        return self._problem

    def __call__(self) -> RevocationList:
        return self._current

    def refresh(self) -> str:
        """Re-read the file when it changed; "" when the list in force is the file's, else the problem."""
        try:
            status = self._path.stat()
        except FileNotFoundError:
            self._stamp = None
            self._problem = (f"{self._path}: revocation list missing; keeping sequence {self._current.sequence}"
                             if self._loaded_once else "")
            return self._problem
        except OSError as exc:
            self._stamp = None
            self._problem = f"{self._path}: cannot stat the revocation list ({exc.strerror}); keeping the last one"
            return self._problem
        stamp = _FileStamp(status.st_ino, status.st_size, status.st_mtime_ns)
        if stamp == self._stamp:
            return self._problem
        self._stamp = stamp
        self._problem = self._reload()
        return self._problem

    def _reload(self) -> str:
        keeping = f"keeping sequence {self._current.sequence}" if self._loaded_once else "no revocation in force"
        try:
            data = self._path.read_bytes()
        except OSError as exc:
            self._stamp = None  # read again next time
            return f"{self._path}: cannot read the revocation list ({exc.strerror}); {keeping}"
        try:
            loaded = load_revocation_list(data, self._cas)
        except RevocationListError as exc:
            return f"{self._path}: revocation list refused: {exc}; {keeping}"
        current = self._current
        if self._loaded_once and loaded.issuer != current.issuer:
            return (f"{self._path}: revocation list issued by CA {loaded.issuer[:16]}…, not by {current.issuer[:16]}…"
                    f" as the list in force (a change of CA needs a restart); {keeping}")
        if self._loaded_once:
            if loaded.sequence < current.sequence:
                return (f"{self._path}: revocation list sequence {loaded.sequence} is older than {current.sequence}"
                        f" (rollback refused); {keeping}")
            if loaded.sequence == current.sequence and loaded != current:
                return (f"{self._path}: a different revocation list with the same sequence {loaded.sequence}"
                        f" (refused); {keeping}")
        self._current, self._loaded_once = loaded, True
        return ""
