"""The robot's registered guardians: a directory of guardian certificate files (clause 2.7).

Only a guardian registered on this robot may command it. The registry is a directory holding one
certificate file (PEM or DER, ``*.pem``/``*.crt``/``*.cer``/``*.der``) per guardian, as ``ftrobot dept
issue-guardian`` writes them; the guardian id is the certificate subject's serialNumber. Registering or
removing a guardian is adding or removing a file: :meth:`GuardianRegistry.refresh` re-reads the directory
when a file was added, removed, replaced or touched (names, inodes, sizes and mtimes).

The registry only finds the certificate claimed for an id; whether it is valid (trusted CA, guardian
certificate, validity window) and not revoked is the verifier's check at each command. Fail safe: when two
files claim the same guardian id, that id is refused (no certificate) and the conflict reported, rather
than guessing which one is meant. An unreadable or malformed file is skipped and reported.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.x509.oid import NameOID

from ftrobot_guard.trust.certificates import (
    CERTIFICATE_SUFFIXES,
    MAX_CERTIFICATE_BYTES,
    CertificateError,
    parse_certificate,
)

_Stamp = tuple[tuple[str, int, int, int], ...]


def _guardian_id_of(data: bytes) -> str:
    """The subject serialNumber (guardian id) of a certificate; CertificateError or ValueError if none."""
    cert = parse_certificate(data)
    values = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if len(values) != 1 or not isinstance(values[0].value, str) or not values[0].value:
        raise ValueError("subject has no single serialNumber (guardian id)")
    return values[0].value


class GuardianRegistry:
    """The guardian certificates registered in ``directory``, by guardian id (read at construction)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = Path(directory)
        self._certificates: dict[str, bytes] = {}
        self._stamp: _Stamp | None = None
        self._problems: tuple[str, ...] = ()
        self.refresh()

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def guardian_ids(self) -> frozenset[str]:
        return frozenset(self._certificates)

    @property
    def problems(self) -> tuple[str, ...]:
        """What the last reading of the directory found wrong (one line each)."""
        return self._problems

    def certificate_of(self, guardian_id: str) -> bytes | None:
        """The certificate (file bytes) registered for ``guardian_id``, or None."""
        return self._certificates.get(guardian_id)

    def refresh(self) -> str:
        """Re-read the directory when it changed; "" when every file is in use, else the problems ("; ")."""
        try:
            stamp = self._scan()
        except OSError as exc:
            self._certificates, self._stamp = {}, None
            self._problems = (f"{self._directory}: cannot list the guardian registry ({exc.strerror}); "
                              "no guardian registered",)
            return "; ".join(self._problems)
        if stamp != self._stamp:
            self._stamp = stamp
            self._reload(stamp)
        return "; ".join(self._problems)

    def _scan(self) -> _Stamp:
        entries = []
        with os.scandir(self._directory) as found:
            for entry in found:
                if Path(entry.name).suffix.lower() not in CERTIFICATE_SUFFIXES or entry.name.startswith("."):
                    continue
                status = entry.stat()
                entries.append((entry.name, status.st_ino, status.st_size, status.st_mtime_ns))
        return tuple(sorted(entries))

    def _reload(self, stamp: _Stamp) -> None:
        claims: dict[str, list[tuple[str, bytes]]] = {}
        problems: list[str] = []
        for name, _inode, size, _mtime in stamp:
            path = self._directory / name
            if size > MAX_CERTIFICATE_BYTES:
                problems.append(f"{path}: {size} bytes, not a guardian certificate; skipped")
                continue
            try:
                data = path.read_bytes()
                guardian_id = _guardian_id_of(data)
            except OSError as exc:
                problems.append(f"{path}: cannot read ({exc.strerror}); skipped")
                self._stamp = None  # read again next time
                continue
            except (CertificateError, ValueError) as exc:
                problems.append(f"{path}: {' '.join(str(exc).split())}; skipped")
                continue
            claims.setdefault(guardian_id, []).append((name, data))
        certificates: dict[str, bytes] = {}
        for guardian_id, files in sorted(claims.items()):
            if len(files) > 1:
                names = ", ".join(name for name, _ in files)
                problems.append(f"guardian {guardian_id} has {len(files)} certificate files ({names}); refused "
                                "until one is removed")
                continue
            certificates[guardian_id] = files[0][1]
        self._certificates, self._problems = certificates, tuple(problems)
