"""The safety modes of a robot employee: numbers, names, stop categories and what each allows.

The numbers are those of ``ftrobot_msgs/SafetyState`` (``MODE_*`` constants; a test keeps the two
equal). Stop categories follow IEC 60204-1 §9.2.2: category 0 removes power at once, category 1
brings the machine to a controlled stop and then removes power, category 2 stops and keeps power.

=========== ======= ============= ========= ====================================================
mode        number  stop category latched   meaning
=========== ======= ============= ========= ====================================================
BOOT        0       —             no        self-check (identity, envelope); nothing forwarded
NORMAL      1       —             no        commands inside the envelope are forwarded
REDUCED     2       —             no        commands forwarded with speed and effort scaled down
SAFE_STOP   3       2             yes       hold posture with power kept; escalates if unresolved
POWER_DOWN  4       1             yes       lower to rest, damp, then motor power off
ESTOP       5       0 or 1        yes       guardian or e-stop device; latched
PAUSED      6       2             no        a guardian's PAUSE: hold posture with power kept; left
                                            by a guardian's authenticated RESUME
=========== ======= ============= ========= ====================================================

Leaving a latched mode needs an authenticated guardian RESET once the cause is cleared. PAUSED is a
guardian's deliberate hold (a break, a crowd): it does not escalate and is left by RESUME; any stop
from PAUSED is a stop as from NORMAL.
"""

from __future__ import annotations

import enum


class SafetyMode(enum.IntEnum):
    """A safety mode; the value is the ``ftrobot_msgs/SafetyState`` ``mode`` number."""

    BOOT = 0
    NORMAL = 1
    REDUCED = 2
    SAFE_STOP = 3
    POWER_DOWN = 4
    ESTOP = 5
    PAUSED = 6

    @property
    def latched(self) -> bool:
        """True when leaving this mode needs an authenticated guardian RESET."""
        return self in LATCHED_MODES

    @property
    def forwards_motion(self) -> bool:
        """True when the command gate may forward motion commands in this mode."""
        return self in (SafetyMode.NORMAL, SafetyMode.REDUCED)

    @property
    def stop_category(self) -> int | None:
        """IEC 60204-1 stop category of a stop mode (ESTOP: 1, the controlled stop); None otherwise."""
        return _STOP_CATEGORY.get(self)


class UnknownSafetyModeError(ValueError):
    """A mode number or name that is not one of :class:`SafetyMode`."""


LATCHED_MODES = frozenset({SafetyMode.SAFE_STOP, SafetyMode.POWER_DOWN, SafetyMode.ESTOP})
_STOP_CATEGORY = {SafetyMode.SAFE_STOP: 2, SafetyMode.POWER_DOWN: 1, SafetyMode.ESTOP: 1, SafetyMode.PAUSED: 2}


def mode_from_number(number: int) -> SafetyMode:
    """The mode with this ``SafetyState.mode`` number; :class:`UnknownSafetyModeError` otherwise."""
    try:
        return SafetyMode(number)
    except ValueError:
        raise UnknownSafetyModeError(f"unknown safety mode number {number!r}") from None


def mode_from_name(name: str) -> SafetyMode:
    """The mode with this name (``"NORMAL"``); :class:`UnknownSafetyModeError` otherwise."""
    try:
        return SafetyMode[name]
    except KeyError:
        raise UnknownSafetyModeError(f"unknown safety mode name {name[:40]!r}") from None
