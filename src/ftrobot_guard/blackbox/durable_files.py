"""Durable file operations of the log directory: a new file written whole and fsynced (file and
directory) before anyone relies on it, directory fsyncs, and one-line explanations of OS errors."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ftrobot_guard.blackbox.errors import LogWriteError


def describe_os_error(path: Path, exc: OSError, action: str) -> str:
    """One-line explanation of an OSError while writing the log."""
    if exc.errno == errno.ENOSPC:
        return f"{path}: disk full while {action}"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{path}: not writable while {action} ({exc.strerror}; read-only directory or file system?)"
    return f"{path}: I/O error while {action} ({exc.strerror or exc})"


def fsync_directory(directory: Path) -> None:
    """Make a file creation, rename or deletion in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_new_file(path: Path, data: bytes, mode: int, action: str) -> None:
    """Create ``path`` (never replacing an existing file), write ``data``, fsync the file and its
    directory. Raises LogWriteError naming the file and ``action``; a partial file is removed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise LogWriteError(describe_os_error(path, exc, action)) from None
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_directory(path.parent)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise LogWriteError(describe_os_error(path, exc, action)) from None
