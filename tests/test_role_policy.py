"""RolePolicy: strict reading, the default grants, and nothing authorized for a role it does not name."""

from __future__ import annotations

import pytest

from ftrobot_guard.guardians.guardian_commands import STOP_ACTIONS, GuardianAction
from ftrobot_guard.guardians.role_policy import DEFAULT_ROLE_POLICY, RolePolicy, RolePolicyError

pytestmark = pytest.mark.clause("2.7", "6.3")
A = GuardianAction


def test_the_default_policy() -> None:
    assert DEFAULT_ROLE_POLICY.grants["operator"] == frozenset(A) - {A.ACKNOWLEDGE}
    assert DEFAULT_ROLE_POLICY.grants["officer"] == STOP_ACTIONS | {A.ACKNOWLEDGE}
    assert DEFAULT_ROLE_POLICY.grants["maintainer"] == STOP_ACTIONS | {A.REDUCE, A.RESUME, A.RESET}
    assert set(DEFAULT_ROLE_POLICY.grants) == {"operator", "officer", "maintainer"}
    assert DEFAULT_ROLE_POLICY.roles_allowed(A.RESET) == {"operator", "maintainer"}
    assert not DEFAULT_ROLE_POLICY.allows("visitor_guide", A.ESTOP)
    assert not DEFAULT_ROLE_POLICY.allows("Operator", A.ESTOP)


def test_from_mapping_and_back() -> None:
    policy = RolePolicy.from_mapping({"operator": ["ESTOP", "RESET"], "auditor": ["ACKNOWLEDGE"]})
    assert policy.allows("operator", A.RESET) and not policy.allows("operator", A.RESUME)
    assert policy.allows("auditor", A.ACKNOWLEDGE) and not policy.allows("auditor", A.ESTOP)
    assert RolePolicy.from_mapping(policy.to_mapping()) == policy
    assert RolePolicy.from_mapping(DEFAULT_ROLE_POLICY.to_mapping()) == DEFAULT_ROLE_POLICY


@pytest.mark.parametrize(("mapping", "fragment"), [
    ({"operator": ["ESTOP", "SELF_DESTRUCT"]}, "unknown action 'SELF_DESTRUCT'"),
    ({"operator": ["estop"]}, "unknown action 'estop'"),
    ({"operator": [7]}, "unknown action 7"),
    ({"operator": []}, "grants no action"),
    ({"operator": "ESTOP"}, "expected a list"),
    ({"operator": None}, "expected a list"),
    ({"bad role!": ["ESTOP"]}, "must be 1-64"),
    ({7: ["ESTOP"]}, "a role name is a string"),
    ({}, "at least one role"),
    (["operator"], "mapping"),
])
def test_ill_formed_policies_are_refused(mapping: object, fragment: str) -> None:
    with pytest.raises(RolePolicyError, match=fragment.replace("(", r"\(")):
        RolePolicy.from_mapping(mapping)


def test_a_policy_cannot_be_changed_after_checking() -> None:
    grants = {"operator": frozenset({A.ESTOP})}
    policy = RolePolicy(grants)
    grants["operator"] = frozenset(A)
    assert not policy.allows("operator", A.RESET)
    with pytest.raises(TypeError):
        policy.grants["operator"] = frozenset(A)  # type: ignore[index]
