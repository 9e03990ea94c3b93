"""Which guardian role may authorize which command action.

A guardian certificate names the guardian's role (its organisational unit, ``ftrobot dept issue-guardian
--role``). The role policy maps each role to the :class:`~.guardian_commands.GuardianAction` values it is
*authorized* for; a role it does not name is authorized for nothing. Stops are a separate matter: the guard
obeys every stop whoever sent it (see :data:`~.guardian_commands.STOP_ACTIONS`); the policy only says
whether the command counts as authorized (and is recorded so).

The default (:data:`DEFAULT_ROLE_POLICY`):

* ``operator`` (the guardian responsible for the robot, the role ``issue-guardian`` uses today): every
  action but ACKNOWLEDGE;
* ``officer`` (department staff): ACKNOWLEDGE and the stops (ESTOP, SAFE_STOP, POWER_DOWN, PAUSE);
* ``maintainer``: the stops, REDUCE, RESUME and RESET.

A policy is read from a mapping such as ``{"operator": ["ESTOP", "RESET"]}`` (YAML), strictly: an unknown
action name, a role with no action, a non-list value or an ill-formed role name is a :class:`RolePolicyError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ftrobot_guard.guardians.guardian_commands import GuardianAction

_ROLE_PATTERN = re.compile(r"[A-Za-z0-9.:_-]{1,64}")  # what issue_guardian_certificate accepts as a role


class RolePolicyError(ValueError):
    """A role policy is ill-formed; the message says where."""


@dataclass(frozen=True)
class RolePolicy:
    """Role -> the actions it is authorized for."""

    grants: Mapping[str, frozenset[GuardianAction]]

    def __post_init__(self) -> None:
        frozen: dict[str, frozenset[GuardianAction]] = {}
        for role, actions in dict(self.grants).items():
            if not isinstance(role, str) or not _ROLE_PATTERN.fullmatch(role):
                raise RolePolicyError(f"role {role!r}: must be 1-64 letters, digits or - . : _")
            if not isinstance(actions, (frozenset, set)) or not all(isinstance(a, GuardianAction) for a in actions):
                raise RolePolicyError(f"role {role}: actions must be a set of GuardianAction")
            if not actions:
                raise RolePolicyError(f"role {role}: grants no action (leave the role out instead)")
            frozen[role] = frozenset(actions)
        object.__setattr__(self, "grants", _FrozenMapping(frozen))

    @classmethod
    def from_mapping(cls, mapping: object) -> RolePolicy:
        """A policy from ``{"role": ["ACTION", ...]}`` (action names as in the message, case-sensitive)."""
        if not isinstance(mapping, Mapping):
            raise RolePolicyError(f"a role policy is a mapping of role to action names, got {type(mapping).__name__}")
        if not mapping:
            raise RolePolicyError("a role policy names at least one role")
        grants: dict[str, frozenset[GuardianAction]] = {}
        for role, names in mapping.items():
            if not isinstance(role, str):
                raise RolePolicyError(f"role {role!r}: a role name is a string")
            if not isinstance(names, list):
                raise RolePolicyError(f"role {role}: expected a list of action names, got {type(names).__name__}")
            grants[role] = frozenset(_action_named(role, name) for name in names)
        return cls(grants)

    def allows(self, role: str, action: GuardianAction) -> bool:
        """True when ``role`` is authorized for ``action``."""
        return action in self.grants.get(role, frozenset())

    def roles_allowed(self, action: GuardianAction) -> frozenset[str]:
        """Every role authorized for ``action``."""
        return frozenset(role for role, actions in self.grants.items() if action in actions)

    def to_mapping(self) -> dict[str, list[str]]:
        """The inverse of :meth:`from_mapping` (actions in message order)."""
        return {role: [a.name for a in sorted(actions)] for role, actions in sorted(self.grants.items())}


def _action_named(role: str, name: object) -> GuardianAction:
    if not isinstance(name, str) or name not in GuardianAction.__members__:
        known = ", ".join(GuardianAction.__members__)
        raise RolePolicyError(f"role {role}: unknown action {name!r} (known: {known})")
    return GuardianAction[name]


class _FrozenMapping(Mapping[str, frozenset[GuardianAction]]):
    """A read-only mapping (the policy cannot be changed after checking)."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, frozenset[GuardianAction]]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> frozenset[GuardianAction]:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._data) == dict(other)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)


_STOPS = ["ESTOP", "SAFE_STOP", "POWER_DOWN", "PAUSE"]

DEFAULT_ROLE_POLICY = RolePolicy.from_mapping({
    "operator": [a.name for a in GuardianAction if a is not GuardianAction.ACKNOWLEDGE],
    "officer": ["ACKNOWLEDGE", *_STOPS],
    "maintainer": [*_STOPS, "REDUCE", "RESUME", "RESET"],
})
