"""A department, its guardians and signed guardian commands for the guardians/ tests (keys made per run)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.guardians.command_authentication import GuardianCommandVerifier
from ftrobot_guard.guardians.guardian_commands import GuardianAction, command_fields, sign_command
from ftrobot_guard.guardians.replay_memory import ReplayMemory
from ftrobot_guard.guardians.revocation_list import RevocationList
from ftrobot_guard.guardians.role_policy import DEFAULT_ROLE_POLICY, RolePolicy
from ftrobot_guard.trust.certificates import (
    CertificateVerifier,
    certificate_der,
    certificate_pem,
    create_department_ca,
    issue_guardian_certificate,
)

ROBOT = "440304-RB-2026-000123-8"
OTHER_ROBOT = "440304-RB-2026-000124-6"
WALL = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Guardian:
    guardian_id: str
    role: str
    key: ed25519.Ed25519PrivateKey
    certificate: x509.Certificate

    @property
    def der(self) -> bytes:
        return certificate_der(self.certificate)

    @property
    def pem(self) -> bytes:
        return certificate_pem(self.certificate)

    def command(self, action: GuardianAction = GuardianAction.RESET, *, robot: str = ROBOT,
                issued: dt.datetime = WALL, nonce: bytes | None = None, argument: str = "",
                reason: str = "cause cleared", key: ed25519.Ed25519PrivateKey | None = None,
                guardian_id: str | None = None) -> tuple[dict[str, Any], bytes]:
        """The signed fields and signature of a command from this guardian (``key`` to sign with another)."""
        fields = command_fields(guardian_id or self.guardian_id, robot, action, argument, reason, issued, nonce)
        return fields, sign_command(key or self.key, fields)


class Department:
    """A department CA (in memory) issuing guardian certificates."""

    def __init__(self, name: str = "Futian Department") -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.ca = create_department_ca(name, self.key, 3650, now=WALL - dt.timedelta(days=2))

    def guardian(self, guardian_id: str, role: str = "operator", not_before: dt.datetime | None = None,
                 not_after: dt.datetime | None = None) -> Guardian:
        key = ed25519.Ed25519PrivateKey.generate()
        certificate = issue_guardian_certificate(
            self.ca, self.key, key.public_key(), guardian_id, "Li Wei", role, "Futian Department",
            not_before or WALL - dt.timedelta(days=1), not_after or WALL + dt.timedelta(days=365))
        return Guardian(guardian_id, role, key, certificate)


def verifier_for(department: Department, guardians: Mapping[str, bytes] | Any, *,
                 policy: RolePolicy = DEFAULT_ROLE_POLICY, revocations: Any = None,
                 memory: ReplayMemory | None = None, max_skew: float = 5.0) -> GuardianCommandVerifier:
    """A verifier trusting ``department`` with ``guardians`` registered (a mapping id -> cert or a registry)."""
    return GuardianCommandVerifier(
        CertificateVerifier([department.ca]), guardians, ROBOT, policy,
        revocations if revocations is not None else RevocationList.empty(),
        memory if memory is not None else ReplayMemory(None, 2 * max_skew), max_skew)
