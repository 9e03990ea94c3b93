"""Key files: 0600 creation, refusal of readable files, wrong kinds, garbage."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from ftrobot_guard.trust.keys import (
    KeyFileError,
    check_private_key_permissions,
    fingerprint,
    generate_private_key,
    load_private_key,
    load_public_key,
    raw_public_bytes,
    write_private_key,
    write_public_key,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.clause("7.1")
def test_private_key_is_created_0600_and_loads(tmp_path: Path) -> None:
    key = generate_private_key("ed25519")
    path = write_private_key(tmp_path / "sub" / "robot.key", key)
    assert mode(path) == 0o600
    loaded = load_private_key(path)
    assert isinstance(loaded, ed25519.Ed25519PrivateKey)
    assert raw_public_bytes(loaded.public_key()) == raw_public_bytes(key.public_key())
    assert [p.name for p in path.parent.iterdir()] == ["robot.key"]  # no temporary left behind


@pytest.mark.clause("7.1")
def test_mode_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = write_private_key(tmp_path / "k", generate_private_key())
    finally:
        os.umask(old)
    assert mode(path) == 0o600


def test_existing_key_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "k", generate_private_key())
    with pytest.raises(KeyFileError, match="already exists"):
        write_private_key(path, generate_private_key())
    replacement = generate_private_key()
    write_private_key(path, replacement, overwrite=True)
    assert raw_public_bytes(load_private_key(path).public_key()) == raw_public_bytes(replacement.public_key())
    assert mode(path) == 0o600


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o660, 0o602])
@pytest.mark.clause("7.1")
def test_group_or_world_accessible_private_key_is_refused(tmp_path: Path, bad_mode: int) -> None:
    path = write_private_key(tmp_path / "k", generate_private_key())
    os.chmod(path, bad_mode)
    with pytest.raises(KeyFileError, match=f"permissions {bad_mode:04o}.*chmod 600"):
        load_private_key(path)


def test_owner_only_modes_are_accepted(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "k", generate_private_key())
    os.chmod(path, 0o400)
    check_private_key_permissions(path)
    assert isinstance(load_private_key(path), ed25519.Ed25519PrivateKey)


def test_wrong_key_type_is_refused(tmp_path: Path) -> None:
    path = write_private_key(tmp_path / "x.key", generate_private_key("x25519"))
    with pytest.raises(KeyFileError, match="expected an ed25519 private key"):
        load_private_key(path, "ed25519")
    assert isinstance(load_private_key(path, "x25519"), x25519.X25519PrivateKey)
    pub = write_public_key(tmp_path / "x.pub", generate_private_key("x25519").public_key())
    with pytest.raises(KeyFileError, match="expected an ed25519 public key"):
        load_public_key(pub, "ed25519")
    with pytest.raises(ValueError, match="unknown key kind"):
        generate_private_key("rsa")


def test_garbage_missing_and_directory(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.key"
    fd = os.open(garbage, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    with pytest.raises(KeyFileError, match=f"{garbage}: not a PEM private key"):
        load_private_key(garbage)
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        load_public_key(garbage)
    with pytest.raises(KeyFileError, match="no such key file"):
        load_private_key(tmp_path / "missing.key")
    with pytest.raises(KeyFileError, match="no such key file"):
        load_public_key(tmp_path / "missing.pub")
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_private_key(tmp_path)


def test_public_key_round_trip_and_fingerprint(tmp_path: Path) -> None:
    key = generate_private_key()
    path = write_public_key(tmp_path / "k.pub", key.public_key())
    assert mode(path) == 0o644
    loaded = load_public_key(path)
    assert fingerprint(loaded) == fingerprint(key.public_key())
    assert len(fingerprint(loaded)) == 16
    assert fingerprint(generate_private_key().public_key()) != fingerprint(loaded)
