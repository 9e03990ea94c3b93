"""How the supervisor answers an anomaly, and the timing rules of its stops (a section of the signed envelope).

Severities are those of ``ftrobot_msgs/Anomaly`` (INFO 0, WARNING 1, ERROR 2, CRITICAL 3). Each severity
maps to a :class:`Response`; an anomaly *kind* may override its severity's response (e.g. a fall under way
answers TUCK whatever severity the detector gave it; an override never makes a response milder; a few
kinds have, at some severity, a fixed response no envelope changes, :data:`FIXED_RESPONSES`).
Defaults follow the message's documentation:

========= ========== =====================================================================
severity  response   what the supervisor does
========= ========== =====================================================================
INFO      RECORD     nothing but the record
WARNING   REDUCE     REDUCED while the anomaly is active (not latched)
ERROR     SAFE_STOP  category-2 stop, latched: hold posture, power kept
CRITICAL  POWER_DOWN category-1 stop, latched: lower to rest, damp, power off
—         TUCK       POWER_DOWN for a fall already under way: a protective tuck through the gate when
                     falling forwards or backwards, then DAMPING; sideways DAMPING at once; then power
                     off (safety/rest_lowering.py, ``fall_response``: lower peak impacts than DAMPING)
—         DAMP       POWER_DOWN without lowering: DAMPING at once, then power off (inputs lost,
                     battery nearly empty: lowering needs what is failing)
========= ========== =====================================================================
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class Severity(enum.IntEnum):
    """``ftrobot_msgs/Anomaly`` severity (numbers equal the message's SEVERITY_* constants)."""

    INFO = 0
    WARNING = 1
    ERROR = 2
    CRITICAL = 3


class Response(enum.Enum):
    """What the supervisor does about an anomaly (ordered by :attr:`rank`)."""

    RECORD = "record"
    REDUCE = "reduce"
    SAFE_STOP = "safe_stop"
    POWER_DOWN = "power_down"
    TUCK = "tuck"
    DAMP = "damp"

    @property
    def rank(self) -> int:
        return _RESPONSE_RANK[self]

    @property
    def stops(self) -> bool:
        """True for the responses that latch a stop."""
        return self.rank >= _RESPONSE_RANK[Response.SAFE_STOP]


# Responses no envelope can make milder, by kind and severity. hardware_stopped at CRITICAL: the hardware cut
# motor power by itself, or stopped by itself again while the guard already held the robot after its first
# stop (safety/guard_core.py); lowering would ask it for NORMAL again: the guard agrees with DAMPING, then
# powers off. (At ERROR, a first DAMPING by the driver's guard/alive watchdog, the guard holds the robot.)
# hardware_unresponsive: a stop the guard asked for went unconfirmed; guard/alive is withheld so that the
# driver's watchdog damps the robot, and the guard asks for nothing that needs the driver to obey more.
FIXED_RESPONSES: Mapping[tuple[str, Severity], Response] = MappingProxyType({
    ("hardware_stopped", Severity.CRITICAL): Response.DAMP,
    ("hardware_unresponsive", Severity.CRITICAL): Response.DAMP,
})

_RESPONSE_RANK = {Response.RECORD: 0, Response.REDUCE: 1, Response.SAFE_STOP: 2, Response.POWER_DOWN: 3,
                  Response.TUCK: 4, Response.DAMP: 5}

DEFAULT_SEVERITY_RESPONSES: Mapping[Severity, Response] = MappingProxyType({
    Severity.INFO: Response.RECORD,
    Severity.WARNING: Response.REDUCE,
    Severity.ERROR: Response.SAFE_STOP,
    Severity.CRITICAL: Response.POWER_DOWN,
})


@dataclass(frozen=True, eq=False)
class ResponsePolicy:
    """Severity and kind responses plus the supervisor's timing rules."""

    severity_responses: Mapping[Severity, Response] = field(default_factory=lambda: DEFAULT_SEVERITY_RESPONSES)
    kind_responses: Mapping[str, Response] = field(default_factory=lambda: MappingProxyType({}))
    safe_stop_escalation: float = 30.0   # s: a SAFE_STOP (or a holding ESTOP) not RESET by then is lowered
    estop_category: int = 1              # IEC 60204-1 stop category of ESTOP: 1 (lower, damp, off) or 2 (hold)
    reset_max_age: float = 2.0           # s: an authenticated RESET older than this is refused

    def response_to(self, kind: str, severity: Severity) -> Response:
        """The response to an anomaly of ``kind`` raised with ``severity``.

        A kind's own response can only make the answer stricter than its severity's, never milder.
        """
        candidates = [self.severity_responses[severity]]
        overrides = (self.kind_responses.get(kind), FIXED_RESPONSES.get((kind, severity)))
        candidates += [response for response in overrides if response is not None]
        return max(candidates, key=lambda response: response.rank)
