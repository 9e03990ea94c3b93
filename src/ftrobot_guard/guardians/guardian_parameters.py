"""The guardians' settings as ROS parameters: flat string lists parsed strictly.

ROS parameters have no nested maps, so the guard takes two string arrays:

* ``guardian_roles``: ``"role=ACTION,ACTION,..."``, one entry per role (e.g.
  ``"officer=ACKNOWLEDGE,ESTOP,SAFE_STOP,POWER_DOWN,PAUSE"``); empty: the default policy;
* ``guardian_contacts``: ``"GUARDIAN_ID=how to reach them"`` (a phone number, a radio channel), named
  in every incident report with the guardian on duty.

A malformed entry is an error that names it; nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ftrobot_guard.guardians.role_policy import DEFAULT_ROLE_POLICY, RolePolicy, RolePolicyError

MAX_CONTACT = 120


class GuardianParameterError(ValueError):
    """A malformed guardian_roles or guardian_contacts entry; str() names it."""


def _split(entry: object, what: str) -> tuple[str, str]:
    if not isinstance(entry, str):
        raise GuardianParameterError(f"{what} entry {entry!r} is not a string")
    key, sep, value = entry.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise GuardianParameterError(f"{what} entry {entry[:80]!r} is not 'NAME=VALUE'")
    return key, value


def parse_role_entries(entries: Sequence[str]) -> RolePolicy:
    """The role policy of ``guardian_roles`` entries; :data:`DEFAULT_ROLE_POLICY` when there are none."""
    if not entries:
        return DEFAULT_ROLE_POLICY
    mapping: dict[str, list[str]] = {}
    for entry in entries:
        role, actions = _split(entry, "guardian_roles")
        if role in mapping:
            raise GuardianParameterError(f"guardian_roles: role {role!r} is given twice")
        names = [name.strip() for name in actions.split(",")]
        if any(not name for name in names):
            raise GuardianParameterError(f"guardian_roles entry {entry[:80]!r} has an empty action")
        mapping[role] = names
    try:
        return RolePolicy.from_mapping(mapping)
    except RolePolicyError as exc:
        raise GuardianParameterError(f"guardian_roles: {exc}") from None


def parse_contacts(entries: Sequence[str]) -> Mapping[str, str]:
    """Guardian id -> contact, from ``guardian_contacts`` entries."""
    contacts: dict[str, str] = {}
    for entry in entries:
        guardian, contact = _split(entry, "guardian_contacts")
        if guardian in contacts:
            raise GuardianParameterError(f"guardian_contacts: guardian {guardian!r} is given twice")
        if len(contact) > MAX_CONTACT or not contact.isprintable():
            raise GuardianParameterError(f"guardian_contacts: the contact of {guardian!r} is longer than "
                                         f"{MAX_CONTACT} characters or not printable")
        contacts[guardian] = contact
    return contacts
