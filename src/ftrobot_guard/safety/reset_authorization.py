"""The authenticated guardian RESET: the only key that opens a latched stop.

Leaving SAFE_STOP, POWER_DOWN or ESTOP needs a RESET from a registered guardian (监护人). The supervisor
accepts it only as an :class:`AuthenticatedReset`, and an :class:`AuthenticatedReset` cannot be built
except by :meth:`GuardianResetVerifier.authenticate` after every check has passed: its constructor
demands a module-private seal, the class cannot be subclassed and its fields cannot be changed, and the
verifier class cannot be subclassed either. An unauthenticated RESET therefore cannot be expressed by
mistake; forging one needs deliberate use of a private name.

:class:`GuardianResetVerifier` checks a signed ``ftrobot_msgs/GuardianCommand`` (as the field mapping of
:func:`ftrobot_guard.trust.signed_fields.message_fields`, signature apart):

* action RESET, addressed to this robot's identity number;
* the guardian's certificate (from the robot's guardian registry) issued by a trusted department CA,
  valid now, with a permitted role;
* the Ed25519 signature over the fields under the domain ``ftrobot/guardian_command/v1``;
* ``issued_at`` within ``max_skew`` of the robot's wall clock, and a 16-byte nonce never seen before
  (remembered while a command carrying it could still be fresh).

Every refusal is a :class:`ResetRefused` with a one-line reason.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, NoReturn

from ftrobot_guard.trust.certificates import CertificateError, CertificateVerifier
from ftrobot_guard.trust.signed_fields import verify_fields

GUARDIAN_COMMAND_DOMAIN = "ftrobot/guardian_command/v1"
ACTION_RESET = 7            # ftrobot_msgs/GuardianCommand.ACTION_RESET
NONCE_LENGTH = 16
MAX_REMEMBERED_NONCES = 65536
_COMMAND_FIELDS = frozenset({"guardian_id", "robot_id", "action", "argument", "reason", "issued_at", "nonce"})

_SEAL = object()


class ResetRefused(ValueError):
    """A RESET command did not authenticate; str() is the reason."""


class AuthenticatedReset:
    """A guardian RESET that passed authentication at ``authenticated_at`` (supervisor clock, s)."""

    __slots__ = ("_authenticated_at", "_guardian_id", "_role")
    _guardian_id: str
    _role: str
    _authenticated_at: float

    def __init__(self, guardian_id: str, role: str, authenticated_at: float, *, seal: object) -> None:
        if seal is not _SEAL:
            raise TypeError("an AuthenticatedReset is made only by GuardianResetVerifier.authenticate()")
        object.__setattr__(self, "_guardian_id", guardian_id)
        object.__setattr__(self, "_role", role)
        object.__setattr__(self, "_authenticated_at", float(authenticated_at))

    def __init_subclass__(cls, **kwargs: Any) -> NoReturn:
        raise TypeError("AuthenticatedReset cannot be subclassed")

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("an AuthenticatedReset cannot be changed")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("an AuthenticatedReset cannot be changed")

    def __reduce__(self) -> NoReturn:
        raise TypeError("an AuthenticatedReset cannot be copied or pickled")

    @property
    def guardian_id(self) -> str:
        return self._guardian_id

    @property
    def role(self) -> str:
        return self._role

    @property
    def authenticated_at(self) -> float:
        return self._authenticated_at

    def __repr__(self) -> str:
        return f"AuthenticatedReset(guardian_id={self.guardian_id!r}, authenticated_at={self.authenticated_at})"


def _refuse(message: str) -> NoReturn:
    raise ResetRefused(message)


def _issued_at(value: object) -> dt.datetime:
    if not isinstance(value, Mapping) or set(value) != {"sec", "nanosec"}:
        _refuse("issued_at must be a builtin_interfaces/Time {sec, nanosec}")
    sec, nanosec = value["sec"], value["nanosec"]
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (sec, nanosec)) or not 0 <= nanosec < 10**9:
        _refuse("issued_at must hold whole seconds and nanoseconds")
    try:
        return dt.datetime.fromtimestamp(sec + nanosec / 1e9, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        _refuse("issued_at is out of range")


class GuardianResetVerifier:
    """Turns a signed GuardianCommand RESET into an :class:`AuthenticatedReset`, or refuses it."""

    def __init__(
        self,
        certificate_verifier: CertificateVerifier,
        guardian_certificates: Mapping[str, bytes],
        robot_id: str,
        allowed_roles: frozenset[str] | None = None,
        max_skew: float = 5.0,
    ) -> None:
        if not isinstance(certificate_verifier, CertificateVerifier):
            raise ValueError("certificate_verifier must be a CertificateVerifier")
        if not (isinstance(max_skew, (int, float)) and math.isfinite(max_skew) and max_skew > 0):
            raise ValueError("max_skew must be a positive number of seconds")
        self._verifier = certificate_verifier
        self._certificates = dict(guardian_certificates)
        self._robot_id = robot_id
        self._roles = allowed_roles
        self._max_skew = dt.timedelta(seconds=float(max_skew))
        self._nonces: OrderedDict[bytes, dt.datetime] = OrderedDict()

    def __init_subclass__(cls, **kwargs: Any) -> NoReturn:
        raise TypeError("GuardianResetVerifier cannot be subclassed")

    def authenticate(self, fields: Mapping[str, Any], signature: bytes, now: float,
                     wall_clock: dt.datetime) -> AuthenticatedReset:
        """An :class:`AuthenticatedReset` stamped ``now`` (the supervisor's clock), or :class:`ResetRefused`.

        ``fields``: the command's fields without ``signature``; ``wall_clock``: UTC now (certificates,
        ``issued_at``).
        """
        if not isinstance(fields, Mapping) or set(fields) != _COMMAND_FIELDS:
            _refuse(f"a guardian command has exactly the fields {', '.join(sorted(_COMMAND_FIELDS))}")
        if not isinstance(wall_clock, dt.datetime) or wall_clock.tzinfo is None:
            raise ValueError("wall_clock must be a timezone-aware datetime")
        guardian_id, action, robot_id = fields["guardian_id"], fields["action"], fields["robot_id"]
        if action != ACTION_RESET or isinstance(action, bool):
            _refuse(f"action {action!r} is not RESET ({ACTION_RESET})")
        if robot_id != self._robot_id:
            _refuse(f"addressed to robot {str(robot_id)[:40]!r}, not to {self._robot_id}")
        if not isinstance(guardian_id, str) or guardian_id not in self._certificates:
            _refuse(f"guardian {str(guardian_id)[:40]!r} is not registered on this robot")
        try:
            identity = self._verifier.verify_guardian(self._certificates[guardian_id], wall_clock)
        except CertificateError as exc:
            _refuse(f"guardian {guardian_id}: certificate refused: {exc}")
        if identity.guardian_id != guardian_id:
            _refuse(f"the certificate registered for {guardian_id} is issued to {identity.guardian_id}")
        if self._roles is not None and identity.role not in self._roles:
            _refuse(f"guardian {guardian_id}: role {identity.role!r} may not RESET")
        if not verify_fields(identity.public_key, GUARDIAN_COMMAND_DOMAIN, fields, signature):
            _refuse(f"guardian {guardian_id}: the signature does not verify")
        issued = _issued_at(fields["issued_at"])
        if abs(issued - wall_clock) > self._max_skew:
            _refuse(f"issued at {issued.isoformat()}, more than {self._max_skew.total_seconds():g} s from now "
                    f"({wall_clock.isoformat()})")
        nonce = fields["nonce"]
        if not isinstance(nonce, (bytes, bytearray)) or len(nonce) != NONCE_LENGTH:
            _refuse(f"nonce must be {NONCE_LENGTH} bytes")
        self._forget_stale(wall_clock)
        if bytes(nonce) in self._nonces:
            _refuse("nonce seen before: a replayed command")
        if len(self._nonces) >= MAX_REMEMBERED_NONCES:
            _refuse("too many guardian commands in the freshness window; try again in a few seconds")
        self._nonces[bytes(nonce)] = issued
        return AuthenticatedReset(guardian_id, identity.role, now, seal=_SEAL)

    def _forget_stale(self, wall_clock: dt.datetime) -> None:
        horizon = wall_clock - 2 * self._max_skew   # a command issued before this is refused as stale anyway
        stale = [nonce for nonce, issued in self._nonces.items() if issued < horizon]
        for nonce in stale:
            del self._nonces[nonce]
