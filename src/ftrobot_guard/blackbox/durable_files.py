"""Durable file operations: a new file written whole and fsynced (file and directory) before anyone relies
on it, a small file replaced atomically, directory fsyncs, and one-line explanations of OS errors.

Used by the black box's log directory and by the guard's small state files (replay memory, duty roster,
incidents)."""

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


def replace_atomically(path: Path, data: bytes, mode: int, action: str) -> None:
    """Replace ``path`` with ``data`` atomically and durably: a fresh file beside it is written and fsynced,
    renamed over ``path``, then the directory is fsynced. A crash leaves the old file or the new one, never a
    mix. Raises LogWriteError (one line naming the file and ``action``); the temporary file is removed."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.unlink(missing_ok=True)
        write_new_file(tmp, data, mode, action)
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except LogWriteError:
        raise
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise LogWriteError(describe_os_error(path, exc, action)) from None
