"""Decommission: hand the department an archive of the log, then crypto-shred the robot's ability
to read it, and prove it.

1. lock the log (no writer may run), verify it, and check every segment is wrapped for the
   department/auditor key (otherwise the archive could never be read: refuse before shredding);
2. write the archive: an uncompressed tar of the segments as they are (already AES-256-GCM
   encrypted for the auditor), deletion manifests, quarantined bytes and a MANIFEST.json signed
   by the robot key listing every member's SHA-256; re-read it and compare the digests;
3. shred: overwrite with random bytes, fsync and unlink the robot's copies of the data-key wraps
   (keys/*.wrap) and the robot's key files;
4. prove: with the robot's X25519 key still in memory, try to open every segment: it must fail,
   and none of the key files may remain.

Overwriting is best effort on flash and journaling file systems; what makes the data unreadable
is that every data key exists only wrapped, and the only wraps left are for the department key.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from ftrobot_guard.blackbox.errors import BlackBoxError, KeyMismatchError, LogLockedError
from ftrobot_guard.blackbox.record_format import canonical_json
from ftrobot_guard.blackbox.segment_reader import (
    DELETIONS_DIR,
    KEYS_DIR,
    LOCK_FILE,
    QUARANTINE_DIR,
    list_segment_files,
    list_segments,
    open_data_key,
)
from ftrobot_guard.blackbox.trust_anchor import TrustAnchor
from ftrobot_guard.blackbox.verification import verify_log
from ftrobot_guard.trust.keys import KeyFileError, fingerprint, load_private_key

ARCHIVE_MANIFEST = "MANIFEST.json"
ARCHIVE_FORMAT = "ftrobot-blackbox-archive"
ARCHIVE_SIGN_DOMAIN = b"ftrobot-blackbox-archive-v1\x00"


@dataclass
class DecommissionReport:
    archive: Path
    archive_sha256: str = ""
    files_archived: int = 0
    verification: str = ""
    verification_clean: bool = False
    shredded: list[str] = field(default_factory=list)
    proofs: list[str] = field(default_factory=list)
    robot_can_decrypt: bool = True
    dry_run: bool = False

    def render(self) -> str:
        lines = [f"archive {self.archive} ({self.files_archived} files, sha256 {self.archive_sha256})",
                 f"log verification: {self.verification}"]
        if self.dry_run:
            lines.append("dry run: nothing shredded")
        lines += [f"shredded: {item}" for item in self.shredded]
        lines += [f"proof: {item}" for item in self.proofs]
        if not self.dry_run:
            lines.append("robot can no longer decrypt the log" if not self.robot_can_decrypt
                         else "WARNING: the robot can still decrypt part of the log")
        return "\n".join(lines)


def _load_robot_keys(paths: list[Path]) -> tuple[ed25519.Ed25519PrivateKey, list[x25519.X25519PrivateKey]]:
    signing: ed25519.Ed25519PrivateKey | None = None
    xkeys: list[x25519.X25519PrivateKey] = []
    for path in paths:
        try:
            key = load_private_key(path, "ed25519")
        except KeyFileError as first:
            try:
                key = load_private_key(path, "x25519")
            except KeyFileError:
                raise BlackBoxError(str(first)) from None
        if isinstance(key, ed25519.Ed25519PrivateKey):
            signing = key
        else:
            assert isinstance(key, x25519.X25519PrivateKey)
            xkeys.append(key)
    if signing is None:
        raise BlackBoxError("--robot-key: the robot's Ed25519 signing key is required (to sign the archive manifest)")
    return signing, xkeys


def _archive_members(directory: Path) -> list[Path]:
    members = list_segment_files(directory)
    for sub in (DELETIONS_DIR, QUARANTINE_DIR):
        folder = directory / sub
        if folder.is_dir():
            members += sorted(p for p in folder.iterdir() if p.is_file())
    return members


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _shred_file(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.write(os.urandom(max(size, 1)))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def decommission(
    directory: Path,
    robot_key_paths: list[Path],
    auditor_public: x25519.X25519PublicKey,
    archive_path: Path,
    dry_run: bool = False,
    now_ns: int | None = None,
) -> DecommissionReport:
    directory = Path(directory)
    report = DecommissionReport(archive=archive_path, dry_run=dry_run)
    signing, robot_xkeys = _load_robot_keys(robot_key_paths)
    if archive_path.exists():
        raise BlackBoxError(f"{archive_path}: already exists (refusing to overwrite an archive)")
    lock_path = directory / LOCK_FILE
    try:
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o640)
    except OSError as exc:
        raise BlackBoxError(f"{lock_path}: cannot open the log's lock ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LogLockedError(f"{directory}: a recorder is still writing this log; stop it first") from None
        _decommission_locked(directory, report, signing, robot_xkeys, auditor_public, archive_path, dry_run,
                             now_ns or time.time_ns(), robot_key_paths)
    finally:
        os.close(lock_fd)
    return report


def _decommission_locked(
    directory: Path,
    report: DecommissionReport,
    signing: ed25519.Ed25519PrivateKey,
    robot_xkeys: list[x25519.X25519PrivateKey],
    auditor_public: x25519.X25519PublicKey,
    archive_path: Path,
    dry_run: bool,
    now_ns: int,
    robot_key_paths: list[Path],
) -> None:
    anchor = TrustAnchor(source="--robot-key", public_key=signing.public_key())
    verification = verify_log(directory, anchor=anchor)
    report.verification_clean = verification.clean
    report.verification = (f"{len(verification.segments)} segments, {len(verification.errors)} errors,"
                           f" {len(verification.warnings)} warnings" + ("" if verification.clean else
                                                                         " (archived as is; see ftrobot log verify)"))
    robot_id = verification.robot_id
    auditor_raw = auditor_public.public_bytes_raw().hex()
    prefixes = [item.prefix for item in list_segments(directory).segments]  # unreadable ones: archived as is
    for prefix in prefixes:
        if not any(w.recipient_key == auditor_raw for w in prefix.header.key_wraps):
            raise BlackBoxError(
                f"segment {prefix.header.segment_index} ({prefix.header.segment_id}): not wrapped for the auditor key"
                f" {fingerprint(auditor_public)}: the department could not read the archive; refusing to decommission"
                " (wrong --auditor-pub?)")
    members = _archive_members(directory)
    entries = [{"path": str(p.relative_to(directory)), "size": p.stat().st_size, "sha256": _sha256(p)}
               for p in members]
    body = {
        "format": ARCHIVE_FORMAT, "version": 1, "robot_id": robot_id,
        "robot_key": signing.public_key().public_bytes_raw().hex(),
        "auditor_key": auditor_raw, "created_ns": now_ns,
        "created": dt.datetime.fromtimestamp(now_ns / 1e9, tz=dt.UTC).isoformat(),
        "verification": report.verification, "files": entries,
    }
    manifest = dict(body, signature=signing.sign(ARCHIVE_SIGN_DOMAIN + canonical_json(body)).hex())
    _write_archive(directory, archive_path, members, json.dumps(manifest, indent=1, sort_keys=True).encode())
    report.files_archived = len(members)
    report.archive_sha256 = _sha256(archive_path)
    _check_archive(archive_path, entries)
    if dry_run:
        report.robot_can_decrypt = True
        return
    # shred: robot copies of the data keys, then the robot's keys
    keys_dir = directory / KEYS_DIR
    if keys_dir.is_dir():
        for wrap in sorted(keys_dir.iterdir()):
            _shred_file(wrap)
            report.shredded.append(f"{KEYS_DIR}/{wrap.name} (robot's copy of a segment data key)")
    for path in robot_key_paths:
        _shred_file(path)
        report.shredded.append(f"{path} (robot private key)")
    for folder in {keys_dir, *(p.parent for p in robot_key_paths)}:
        if folder.is_dir():
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    # prove
    report.robot_can_decrypt = False
    left = [str(p) for p in robot_key_paths if p.exists()]
    if left:
        report.robot_can_decrypt = True
        report.proofs.append(f"key files still present: {', '.join(left)}")
    else:
        report.proofs.append("no robot key file is left")
    remaining = sorted(keys_dir.iterdir()) if keys_dir.is_dir() else []
    report.proofs.append(f"{len(remaining)} robot data-key wraps left in {KEYS_DIR}/")
    for prefix in prefixes:
        header = prefix.header
        for key in robot_xkeys:
            try:
                open_data_key(directory, prefix, key)
            except KeyMismatchError:
                continue
            report.robot_can_decrypt = True
            report.proofs.append(
                f"segment {header.segment_index}: STILL opens with robot key {fingerprint(key.public_key())}")
    tried = f"with the robot's former X25519 key(s) {', '.join(fingerprint(k.public_key()) for k in robot_xkeys)}" \
        if robot_xkeys else "(no robot X25519 key was configured)"
    if not report.robot_can_decrypt:
        report.proofs.append(f"decryption attempted on all {len(prefixes)} segments {tried}: none opens; the"
                             f" data keys are wrapped only for the department key {fingerprint(auditor_public)}")


def _write_archive(directory: Path, archive_path: Path, members: list[Path], manifest: bytes) -> None:
    tmp = archive_path.with_name(f".{archive_path.name}.tmp{os.getpid()}")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(ARCHIVE_MANIFEST)
            info.size = len(manifest)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(manifest))
            for path in members:
                tar.add(path, arcname=f"log/{path.relative_to(directory)}", recursive=False)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, archive_path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BlackBoxError(f"{archive_path}: cannot write the archive ({exc.strerror or exc})") from None


def _check_archive(archive_path: Path, entries: list[dict[str, object]]) -> None:
    expected = {f"log/{e['path']}": e["sha256"] for e in entries}
    try:
        with tarfile.open(archive_path, "r") as tar:
            for member in tar.getmembers():
                if member.name == ARCHIVE_MANIFEST:
                    continue
                handle = tar.extractfile(member)
                if handle is None or hashlib.sha256(handle.read()).hexdigest() != expected.pop(member.name, None):
                    raise BlackBoxError(f"{archive_path}: member {member.name} does not match the log; not shredding")
    except (OSError, tarfile.TarError) as exc:
        raise BlackBoxError(f"{archive_path}: cannot re-read the archive ({exc}); not shredding") from None
    if expected:
        raise BlackBoxError(f"{archive_path}: members missing from the archive: {sorted(expected)}; not shredding")
