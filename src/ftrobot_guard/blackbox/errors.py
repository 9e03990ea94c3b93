"""Exceptions of the black box. Every message is one line naming the file and what is wrong."""

from __future__ import annotations


class BlackBoxError(Exception):
    """A black-box operation failed for a reason the user can act on."""


class FormatError(BlackBoxError):
    """Bytes do not follow the black-box format (bad magic, unknown version, corrupt field)."""


class UnsupportedVersionError(FormatError):
    """A segment or manifest uses a format version this code does not read."""


class LogWriteError(BlackBoxError):
    """Writing to the log failed (disk full, read-only directory, I/O error)."""


class LogLockedError(BlackBoxError):
    """Another writer holds the log directory's lock."""


class KeyMismatchError(BlackBoxError):
    """A key is not the one this log or segment needs."""
