"""The nonces of accepted guardian commands, remembered across a restart.

Every guardian command carries a 16-byte random nonce; a command whose nonce was accepted before is a
replay. A robot that forgot its nonces on restart would accept, within the freshness window, a recorded
RESET played back after a power cycle; so :class:`ReplayMemory` keeps them in a file, one line per nonce
(``<32 hex digits> <issued_at, ISO 8601 UTC>``), appended and fsynced *before* :meth:`ReplayMemory.remember`
returns. When the line cannot be made durable, :meth:`~ReplayMemory.remember` raises
:class:`ReplayMemoryError` and the verifier refuses the command (fail safe).

A nonce is needed only while a command carrying it could still be fresh: entries issued more than
``horizon_s`` before now are forgotten (the verifier refuses such commands as stale anyway; the horizon
must be at least twice the verifier's skew allowance). The file is read at start (a torn last line, left
by a power cut mid-append, is ignored) and rewritten atomically (new file fsynced, renamed over the old,
directory fsynced) at start and whenever it has grown well beyond what is still remembered.

``path=None`` keeps the memory in this process only (tests, benches).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from ftrobot_guard.blackbox.durable_files import describe_os_error, fsync_directory, replace_atomically
from ftrobot_guard.blackbox.errors import LogWriteError
from ftrobot_guard.guardians.guardian_commands import NONCE_LENGTH

MAX_REMEMBERED_NONCES = 65536  # within one horizon; beyond it commands are refused until older ones age out
COMPACT_SLACK = 4096  # the file is rewritten when it holds this many lines more than twice the live entries
FILE_MODE = 0o600


class ReplayMemoryError(Exception):
    """A nonce could not be remembered durably (or the memory is full); the command must be refused."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _parse_line(line: bytes) -> tuple[bytes, dt.datetime] | None:
    parts = line.split(b" ")
    if len(parts) != 2 or len(parts[0]) != 2 * NONCE_LENGTH:
        return None
    try:
        nonce = bytes.fromhex(parts[0].decode("ascii"))
        issued = dt.datetime.fromisoformat(parts[1].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if issued.tzinfo is None:
        return None
    return nonce, issued


def _line(nonce: bytes, issued_at: dt.datetime) -> bytes:
    return f"{nonce.hex()} {issued_at.astimezone(dt.UTC).isoformat()}\n".encode("ascii")


class ReplayMemory:
    """Nonces seen within the last ``horizon_s`` seconds, persisted in ``path`` (None: in memory only).

    ``clock`` gives UTC now (forgetting). A file that exists but cannot be read raises
    :class:`ReplayMemoryError` here: the nonces it holds cannot be known. ``load_problems`` lists what was
    ignored on loading (a torn last line, unreadable lines, a failed rewrite).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        horizon_s: float,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        if isinstance(horizon_s, bool) or not isinstance(horizon_s, (int, float)) or not (
            math.isfinite(horizon_s) and horizon_s > 0
        ):
            raise ValueError("horizon_s must be a positive number of seconds")
        self._path = Path(path) if path is not None else None
        self._horizon = dt.timedelta(seconds=float(horizon_s))
        self._clock = clock
        self._nonces: OrderedDict[bytes, dt.datetime] = OrderedDict()
        self._file_lines = 0
        self._needs_rewrite = False  # an append failed part-way: the file may end in a partial line
        self.load_problems: tuple[str, ...] = ()
        if self._path is not None:
            self._load(self._path)

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def horizon_s(self) -> float:
        return self._horizon.total_seconds()

    def __len__(self) -> int:
        return len(self._nonces)

    def seen(self, nonce: bytes) -> bool:
        """True when ``nonce`` was remembered (and not yet forgotten as older than the horizon)."""
        return bytes(nonce) in self._nonces

    def remember(self, nonce: bytes, issued_at: dt.datetime, now: dt.datetime | None = None) -> None:
        """Remember ``nonce`` durably (appended and fsynced before returning); :class:`ReplayMemoryError` if not.

        Entries issued before ``now`` (default: the clock) minus the horizon are forgotten first; a verifier
        passes the wall clock it judges freshness by, so both agree on what is stale.
        """
        if not isinstance(issued_at, dt.datetime) or issued_at.tzinfo is None:
            raise ValueError("issued_at must be a timezone-aware datetime")
        if now is not None and (not isinstance(now, dt.datetime) or now.tzinfo is None):
            raise ValueError("now must be a timezone-aware datetime")
        raw = bytes(nonce)
        if len(raw) != NONCE_LENGTH:
            raise ValueError(f"a nonce is {NONCE_LENGTH} bytes")
        self._forget_old(now)
        if raw in self._nonces:
            raise ReplayMemoryError("nonce already remembered")
        if len(self._nonces) >= MAX_REMEMBERED_NONCES:
            raise ReplayMemoryError(
                f"{MAX_REMEMBERED_NONCES} guardian commands within {self.horizon_s:g} s; try again in a few seconds"
            )
        if self._path is not None:
            if self._needs_rewrite:
                self._compact(self._path)
            self._append(self._path, _line(raw, issued_at))
            if self._file_lines > 2 * len(self._nonces) + COMPACT_SLACK:
                try:
                    self._compact(self._path)
                except ReplayMemoryError:
                    pass  # the appended line is durable already; compaction is retried on the next append
        self._nonces[raw] = issued_at

    def _forget_old(self, now: dt.datetime | None = None) -> None:
        """Forget from the oldest arrival on, up to the first nonce still within the horizon: O(forgotten), not
        O(remembered). Arrival order follows issue time within the verifier's skew, so a nonce kept a little
        past the horizon is only remembered longer (safe: its command is refused as stale anyway)."""
        horizon = (now if now is not None else self._clock()) - self._horizon
        while self._nonces:
            nonce, issued = next(iter(self._nonces.items()))
            if issued >= horizon:
                break
            del self._nonces[nonce]

    def _load(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # nothing remembered yet (appending will tell)
            return
        except OSError as exc:
            raise ReplayMemoryError(f"{path}: cannot read the replay memory ({exc.strerror})") from None
        problems: list[str] = []
        lines = data.split(b"\n")
        torn = lines.pop()  # after the last newline: empty unless the last append was cut short
        if torn:
            problems.append(f"{path}: ignored a torn last line ({len(torn)} bytes)")
        bad = 0
        for line in lines:
            parsed = _parse_line(line)
            if parsed is None:
                bad += 1
                continue
            self._nonces[parsed[0]] = parsed[1]
        if bad:
            problems.append(f"{path}: ignored {bad} unreadable line(s)")
        self._file_lines = len(lines)
        self._forget_old()
        if torn or bad or len(self._nonces) != len(lines):
            try:
                self._compact(path)
            except ReplayMemoryError as exc:
                self._needs_rewrite = True  # retried before the next append, which fails if this still does
                problems.append(str(exc))
        self.load_problems = tuple(problems)

    def _compact(self, path: Path) -> None:
        data = b"".join(_line(nonce, issued) for nonce, issued in self._nonces.items())
        try:
            replace_atomically(path, data, FILE_MODE, "rewriting the replay memory")
        except LogWriteError as exc:
            raise ReplayMemoryError(str(exc)) from None
        self._file_lines = len(self._nonces)
        self._needs_rewrite = False

    def _append(self, path: Path, line: bytes) -> None:
        created = not path.exists()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise ReplayMemoryError(describe_os_error(path, exc, "remembering a nonce")) from None
        try:
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(0, f"short write ({written} of {len(line)} bytes)")
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_directory(path.parent)
        except OSError as exc:
            self._needs_rewrite = True
            raise ReplayMemoryError(describe_os_error(path, exc, "remembering a nonce")) from None
        self._file_lines += 1
