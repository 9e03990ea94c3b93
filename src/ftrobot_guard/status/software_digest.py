"""Digests that let the department see what software and which configuration a robot runs (measures 7.6)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def tree_digest(root: Path, suffixes: tuple[str, ...] = (".py",)) -> str:
    """SHA-256 over the relative paths and contents of the files below ``root`` with these suffixes.

    The order is the sorted relative path, so the digest depends only on what is installed, not on
    the file system's listing order; caches (``__pycache__``) are not part of it.
    """
    digest = hashlib.sha256()
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes and "__pycache__" not in p.parts
    )
    for path in files:
        relative = path.relative_to(root).as_posix().encode()
        content = path.read_bytes()
        digest.update(len(relative).to_bytes(4, "big") + relative)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def installed_software_digest() -> str:
    """Digest of the installed ftrobot_guard Python package and its interface definitions."""
    import ftrobot_guard

    return tree_digest(Path(ftrobot_guard.__file__).resolve().parent)


def files_digest(paths: Iterable[str | Path]) -> str:
    """SHA-256 over the given files' names and contents, in the order given (the params files in use)."""
    digest = hashlib.sha256()
    for path in paths:
        target = Path(path)
        content = target.read_bytes()
        name = target.name.encode()
        digest.update(len(name).to_bytes(4, "big") + name)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()
