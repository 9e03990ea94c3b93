"""Key files: Ed25519 (robot, department, guardian signing) and X25519 (auditor log encryption).

Private keys are PKCS#8 PEM files created with mode 0600 (never briefly readable by others:
the file is opened with O_EXCL and that mode) and refused on load when the group or the
world can read them. Public keys are SubjectPublicKeyInfo PEM files.

Every failure is a :class:`KeyFileError` whose message names the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

PrivateKey = ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey
PublicKey = ed25519.Ed25519PublicKey | x25519.X25519PublicKey

_KINDS = {"ed25519": ed25519.Ed25519PrivateKey, "x25519": x25519.X25519PrivateKey}


class KeyFileError(Exception):
    """A key file is missing, unreadable, too widely readable, or not the expected key."""


def generate_private_key(kind: str = "ed25519") -> PrivateKey:
    """Create a new private key of ``kind`` ("ed25519" or "x25519")."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "x25519":
        return x25519.X25519PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind!r}: expected one of {sorted(_KINDS)}")


def _write_new_file(path: Path, data: bytes, mode: int, overwrite: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path}: already exists (refusing to overwrite a key)")
    try:
        fd = os.open(tmp, flags, mode)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeyFileError(f"{path}: cannot write: {exc.strerror}") from None


def write_private_key(path: str | os.PathLike[str], key: PrivateKey, overwrite: bool = False) -> Path:
    """Write ``key`` as unencrypted PKCS#8 PEM with mode 0600; return the path."""
    target = Path(path)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_new_file(target, pem, 0o600, overwrite)
    return target


def write_public_key(path: str | os.PathLike[str], key: PublicKey, overwrite: bool = False) -> Path:
    """Write ``key`` as SubjectPublicKeyInfo PEM with mode 0644; return the path."""
    target = Path(path)
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_new_file(target, pem, 0o644, overwrite)
    return target


def check_private_key_permissions(path: str | os.PathLike[str]) -> None:
    """Refuse a private key file that the group or the world may read or write."""
    target = Path(path)
    try:
        st = target.stat()
    except FileNotFoundError:
        raise KeyFileError(f"{target}: no such key file") from None
    except OSError as exc:
        raise KeyFileError(f"{target}: cannot stat: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{target}: not a regular file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{target}: permissions {stat.S_IMODE(st.st_mode):04o} let others read the private key;"
            f" run: chmod 600 {target}"
        )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror}") from None


def load_private_key(path: str | os.PathLike[str], kind: str = "ed25519") -> PrivateKey:
    """Load a private key of ``kind`` after checking the file's permissions."""
    target = Path(path)
    if kind not in _KINDS:
        raise ValueError(f"unknown key kind {kind!r}")
    check_private_key_permissions(target)
    try:
        key = serialization.load_pem_private_key(_read(target), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{target}: not a PEM private key ({exc})") from None
    if not isinstance(key, _KINDS[kind]) or not isinstance(key, ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey):
        raise KeyFileError(f"{target}: expected an {kind} private key, found {type(key).__name__}")
    return key


def load_public_key(path: str | os.PathLike[str], kind: str = "ed25519") -> PublicKey:
    """Load a SubjectPublicKeyInfo PEM public key of ``kind``."""
    target = Path(path)
    expected = {"ed25519": ed25519.Ed25519PublicKey, "x25519": x25519.X25519PublicKey}[kind]
    try:
        key = serialization.load_pem_public_key(_read(target))
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{target}: not a PEM public key ({exc})") from None
    if not isinstance(key, expected) or not isinstance(key, ed25519.Ed25519PublicKey | x25519.X25519PublicKey):
        raise KeyFileError(f"{target}: expected an {kind} public key, found {type(key).__name__}")
    return key


def raw_public_bytes(key: PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 or X25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: PublicKey) -> str:
    """Short, stable fingerprint of a public key: SHA-256 of its raw bytes, first 16 hex digits."""
    return hashlib.sha256(raw_public_bytes(key)).hexdigest()[:16]
