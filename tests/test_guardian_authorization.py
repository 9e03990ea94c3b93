"""GuardianCommandVerifier: every refusal kind, every action, mutations of signed commands, replays across a
restart, and a state machine over the supervisor: a latched stop is left only with an accepted, fresh RESET."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ftrobot_guard.guardians.command_authentication import (
    AuthenticatedReset,
    GuardianCommandVerifier,
    GuardianVerdict,
    Refusal,
)
from ftrobot_guard.guardians.guardian_commands import GuardianAction
from ftrobot_guard.guardians.guardian_registry import GuardianRegistry
from ftrobot_guard.guardians.replay_memory import ReplayMemory
from ftrobot_guard.guardians.revocation_list import (
    RevocationEntry,
    RevocationList,
    RevocationListFile,
    issue_revocation_list,
)
from ftrobot_guard.guardians.role_policy import DEFAULT_ROLE_POLICY, RolePolicy
from ftrobot_guard.safety.modes import SafetyMode
from ftrobot_guard.safety.supervisor import STOP_MODES, Supervisor, SupervisorConfig, SupervisorOutput
from ftrobot_guard.trust.certificates import CertificateVerifier, certificate_fingerprint
from guardian_testkit import OTHER_ROBOT, ROBOT, WALL, Department, Guardian, verifier_for

pytestmark = pytest.mark.clause("6.3")

DEPARTMENT = Department()
FORGER = Department("Not The Department")
OPERATOR = DEPARTMENT.guardian("G-440304-0007", "operator")
OFFICER = DEPARTMENT.guardian("G-440304-0100", "officer")
MAINTAINER = DEPARTMENT.guardian("G-440304-0200", "maintainer")
EXPIRED = DEPARTMENT.guardian("G-440304-0300", "operator", WALL - dt.timedelta(days=1), WALL - dt.timedelta(hours=1))
NOT_YET = DEPARTMENT.guardian("G-440304-0301", "operator", WALL + dt.timedelta(hours=1), WALL + dt.timedelta(days=9))
UNTRUSTED = FORGER.guardian("G-440304-0302", "operator")
REGISTERED = {g.guardian_id: g.der for g in (OPERATOR, OFFICER, MAINTAINER, EXPIRED, NOT_YET, UNTRUSTED)}
BY_ROLE = {g.role: g for g in (OPERATOR, OFFICER, MAINTAINER)}


def verifier(**kwargs: Any) -> GuardianCommandVerifier:
    return verifier_for(DEPARTMENT, kwargs.pop("registered", REGISTERED), **kwargs)


def refused(verdict: GuardianVerdict, refusal: Refusal) -> None:
    assert (verdict.accepted, verdict.refusal) == (False, refusal), verdict
    assert verdict.authorization is None and verdict.reason and "\n" not in verdict.reason


# -- accepted ----------------------------------------------------------------------------------------


@pytest.mark.clause("2.7", "6.3")
@pytest.mark.parametrize("action", list(GuardianAction))
@pytest.mark.parametrize("role", sorted(BY_ROLE))
def test_every_action_is_accepted_exactly_for_the_roles_the_policy_allows(action: GuardianAction, role: str) -> None:
    guardian = BY_ROLE[role]
    fields, signature = guardian.command(action, argument="G-440304-0001" if action is GuardianAction.HANDOVER else "")
    verdict = verifier().check(fields, signature, 3.0, WALL)
    assert (verdict.action, verdict.guardian_id, verdict.role) == (action, guardian.guardian_id, role)
    if DEFAULT_ROLE_POLICY.allows(role, action):
        assert verdict.accepted and verdict.refusal is None and action.name in verdict.reason
        if action is GuardianAction.RESET:
            assert isinstance(verdict.authorization, AuthenticatedReset)
            assert (verdict.authorization.guardian_id, verdict.authorization.role) == (guardian.guardian_id, role)
            assert verdict.authorization.authenticated_at == 3.0
        else:
            assert verdict.authorization is None
    else:
        refused(verdict, Refusal.ROLE_NOT_ALLOWED)
        assert f"may not {action.name}" in verdict.reason


def test_a_command_within_the_skew_either_way_is_accepted() -> None:
    check = verifier().check
    for offset in (-5.0, -0.5, 0.0, 4.999, 5.0):
        fields, signature = OPERATOR.command(issued=WALL + dt.timedelta(seconds=offset))
        assert check(fields, signature, 0.0, WALL).accepted, offset


# -- every refusal -----------------------------------------------------------------------------------


def _without(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda fields: fields.pop(name)


MALFORMED_CHANGES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("missing nonce", _without("nonce")),
    ("missing issued_at", _without("issued_at")),
    ("extra field", lambda f: f.update(signature=b"x" * 64)),
    ("guardian_id not a string", lambda f: f.update(guardian_id=7)),
    ("robot_id bytes", lambda f: f.update(robot_id=ROBOT.encode())),
    ("reason None", lambda f: f.update(reason=None)),
    ("huge argument", lambda f: f.update(argument="x" * 5000)),
    ("action 0", lambda f: f.update(action=0)),
    ("action 10", lambda f: f.update(action=10)),
    ("action True", lambda f: f.update(action=True)),
    ("action 7.0", lambda f: f.update(action=7.0)),
    ("action '7'", lambda f: f.update(action="7")),
    ("nonce 15 bytes", lambda f: f.update(nonce=bytes(15))),
    ("nonce 17 bytes", lambda f: f.update(nonce=bytes(17))),
    ("nonce as text", lambda f: f.update(nonce="0" * 16)),
    ("issued_at float", lambda f: f.update(issued_at=WALL.timestamp())),
    ("issued_at extra key", lambda f: f["issued_at"].update(extra=1)),
    ("nanosec out of range", lambda f: f["issued_at"].update(nanosec=10**9)),
    ("sec out of range", lambda f: f["issued_at"].update(sec=10**20)),
]


@pytest.mark.parametrize(("label", "change"), MALFORMED_CHANGES, ids=[label for label, _ in MALFORMED_CHANGES])
def test_malformed_commands_are_refused_as_malformed(label: str, change: Callable[[dict[str, Any]], None]) -> None:
    fields, signature = OPERATOR.command()
    change(fields)
    refused(verifier().check(fields, signature, 0.0, WALL), Refusal.MALFORMED)


@pytest.mark.parametrize("hostile", [None, [], "RESET", 7, {"action": 7}, {}])
def test_a_command_that_is_not_a_field_mapping_is_malformed(hostile: Any) -> None:
    refused(verifier().check(hostile, bytes(64), 0.0, WALL), Refusal.MALFORMED)


def test_a_signature_that_is_not_bytes_is_malformed() -> None:
    fields, signature = OPERATOR.command()
    refused(verifier().check(fields, signature.hex(), 0.0, WALL), Refusal.MALFORMED)  # type: ignore[arg-type]


class _Exploding(dict):  # type: ignore[type-arg]
    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("boom")


def test_an_exception_raised_by_the_input_itself_becomes_a_malformed_verdict() -> None:
    fields, signature = OPERATOR.command()
    verdict = verifier().check(_Exploding(fields), signature, 0.0, WALL)
    refused(verdict, Refusal.MALFORMED)
    assert "RuntimeError" in verdict.reason


REFUSALS: list[tuple[Refusal, Guardian, dict[str, Any], str]] = [
    (Refusal.WRONG_ROBOT, OPERATOR, {"robot": OTHER_ROBOT}, "addressed to robot"),
    (Refusal.UNKNOWN_GUARDIAN, OPERATOR, {"guardian_id": "G-999"}, "not registered"),
    (Refusal.CERTIFICATE_INVALID, EXPIRED, {}, "expired"),
    (Refusal.CERTIFICATE_INVALID, NOT_YET, {}, "not valid before"),
    (Refusal.CERTIFICATE_INVALID, UNTRUSTED, {}, "certificate refused"),
    (Refusal.FORGED, OPERATOR, {"key": ed25519.Ed25519PrivateKey.generate()}, "signature does not verify"),
    (Refusal.FORGED, OPERATOR, {"key": OFFICER.key}, "signature does not verify"),
    (Refusal.STALE, OPERATOR, {"issued": WALL - dt.timedelta(seconds=5.001)}, "stale"),
    (Refusal.FUTURE, OPERATOR, {"issued": WALL + dt.timedelta(seconds=5.001)}, "in the future"),
]


@pytest.mark.parametrize(("refusal", "guardian", "change", "fragment"), REFUSALS,
                         ids=[f"{r.name}-{i}" for i, (r, *_) in enumerate(REFUSALS)])
def test_each_refusal_kind(refusal: Refusal, guardian: Guardian, change: dict[str, Any], fragment: str) -> None:
    fields, signature = guardian.command(**change)
    verdict = verifier().check(fields, signature, 0.0, WALL)
    refused(verdict, refusal)
    assert fragment in verdict.reason


@pytest.mark.clause("2.7", "6.3")
def test_a_registered_certificate_issued_to_someone_else_is_refused() -> None:
    fields, signature = OPERATOR.command()
    verdict = verifier(registered={OPERATOR.guardian_id: OFFICER.der}).check(fields, signature, 0.0, WALL)
    refused(verdict, Refusal.CERTIFICATE_INVALID)
    assert "issued to" in verdict.reason


def test_a_replayed_command_is_refused_and_a_stop_is_replayed_as_well() -> None:
    check = verifier().check
    for action in (GuardianAction.RESET, GuardianAction.ESTOP):
        fields, signature = OPERATOR.command(action)
        assert check(fields, signature, 0.0, WALL).accepted
        refused(check(fields, signature, 0.1, WALL + dt.timedelta(seconds=1)), Refusal.REPLAYED)


@pytest.mark.clause("2.7", "6.3")
def test_a_revoked_guardian_is_refused_by_id_or_by_certificate() -> None:
    revoked_at = WALL - dt.timedelta(minutes=5)
    by_id = RevocationList("a" * 64, 1, WALL, (RevocationEntry(OPERATOR.guardian_id, "", revoked_at, "left"),))
    fields, signature = OPERATOR.command()
    verdict = verifier(revocations=by_id).check(fields, signature, 0.0, WALL)
    refused(verdict, Refusal.REVOKED)
    assert "revoked" in verdict.reason and "left" in verdict.reason
    this_cert = RevocationList("a" * 64, 1, WALL, (RevocationEntry(
        OPERATOR.guardian_id, certificate_fingerprint(OPERATOR.certificate), revoked_at, "key lost"),))
    refused(verifier(revocations=this_cert).check(fields, signature, 0.0, WALL), Refusal.REVOKED)
    other_cert = RevocationList("a" * 64, 1, WALL, (RevocationEntry(OPERATOR.guardian_id, "b" * 64, revoked_at, "old"),))
    assert verifier(revocations=other_cert).check(fields, signature, 0.0, WALL).accepted


def test_an_unauthorized_role_is_refused_and_its_nonce_stays_usable_by_nobody_else() -> None:
    check = verifier().check
    fields, signature = OFFICER.command(GuardianAction.RESET)
    refused(check(fields, signature, 0.0, WALL), Refusal.ROLE_NOT_ALLOWED)
    unknown_role = DEPARTMENT.guardian("G-440304-0400", "visitor_guide")
    fields, signature = unknown_role.command(GuardianAction.ESTOP)
    refused(verifier(registered={unknown_role.guardian_id: unknown_role.der}).check(fields, signature, 0.0, WALL),
            Refusal.ROLE_NOT_ALLOWED)


def test_the_replay_memory_failing_refuses_the_command(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the replay memory's directory should be")
    memory = ReplayMemory(blocker / "nonces", 10.0)
    fields, signature = OPERATOR.command()
    verdict = verifier(memory=memory).check(fields, signature, 0.0, WALL)
    refused(verdict, Refusal.REPLAY_MEMORY_FAILED)
    assert "could not be remembered" in verdict.reason and not memory.seen(fields["nonce"])


def test_a_forged_command_does_not_use_up_the_nonce() -> None:
    check = verifier().check
    fields, signature = OPERATOR.command()
    forged = OPERATOR.command(nonce=fields["nonce"], key=ed25519.Ed25519PrivateKey.generate())
    refused(check(*forged, 0.0, WALL), Refusal.FORGED)
    assert check(fields, signature, 0.0, WALL).accepted


# -- replays across a restart, registry and revocations followed on disk ---------------------------


def test_a_replay_is_refused_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "guardian_nonces"
    fields, signature = OPERATOR.command()
    assert verifier(memory=ReplayMemory(path, 10.0, clock=lambda: WALL)).check(fields, signature, 0.0, WALL).accepted
    restarted = verifier(memory=ReplayMemory(path, 10.0, clock=lambda: WALL + dt.timedelta(seconds=2)))
    refused(restarted.check(fields, signature, 0.0, WALL + dt.timedelta(seconds=2)), Refusal.REPLAYED)
    fresh = OPERATOR.command(issued=WALL + dt.timedelta(seconds=2))
    assert restarted.check(*fresh, 0.0, WALL + dt.timedelta(seconds=2)).accepted


@pytest.mark.clause("2.7", "6.3")
def test_revocation_and_registration_on_disk_take_effect_without_a_restart(tmp_path: Path) -> None:
    registry_dir = tmp_path / "guardians"
    registry_dir.mkdir()
    (registry_dir / "operator.pem").write_bytes(OPERATOR.pem)
    registry = GuardianRegistry(registry_dir)
    revocations = RevocationListFile(tmp_path / "revoked.json", [DEPARTMENT.ca])
    assert revocations.refresh() == ""
    check = verifier(registered=registry, revocations=revocations).check
    assert check(*OPERATOR.command(), 0.0, WALL).accepted
    refused(check(*MAINTAINER.command(), 0.0, WALL), Refusal.UNKNOWN_GUARDIAN)
    (registry_dir / "maintainer.der").write_bytes(MAINTAINER.der)
    assert registry.refresh() == ""
    assert check(*MAINTAINER.command(), 0.0, WALL).accepted
    entry = RevocationEntry(OPERATOR.guardian_id, "", WALL, "left the service centre")
    (tmp_path / "revoked.json").write_bytes(issue_revocation_list(DEPARTMENT.ca, DEPARTMENT.key, [entry], 1, WALL))
    assert revocations.refresh() == ""
    refused(check(*OPERATOR.command(), 0.0, WALL), Refusal.REVOKED)
    assert check(*MAINTAINER.command(), 0.0, WALL).accepted


def test_the_verifier_cannot_be_subclassed_or_built_loosely() -> None:
    with pytest.raises(TypeError):
        type("Lenient", (GuardianCommandVerifier,), {})
    with pytest.raises(TypeError):
        AuthenticatedReset(OPERATOR.guardian_id, "operator", 0.0, seal=object())
    with pytest.raises(ValueError, match="twice"):
        verifier(memory=ReplayMemory(None, 9.0))
    with pytest.raises(ValueError, match="wall_clock"):
        verifier().check(*OPERATOR.command(), 0.0, WALL.replace(tzinfo=None))


# -- hypothesis: no mutation of a valid signed command is ever accepted -------------------------------

_TEXT = st.text(min_size=0, max_size=20)
FIELD_MUTATIONS = st.one_of(
    st.tuples(st.just("guardian_id"), st.sampled_from([OFFICER.guardian_id, MAINTAINER.guardian_id, "G-440304-0008",
                                                       OPERATOR.guardian_id + " ", ""])),
    st.tuples(st.just("robot_id"), st.sampled_from([OTHER_ROBOT, ROBOT.lower(), ROBOT + "0", ""])),
    st.tuples(st.just("action"), st.sampled_from([a for a in GuardianAction if a is not GuardianAction.RESET])),
    st.tuples(st.just("argument"), _TEXT.filter(bool)),
    st.tuples(st.just("reason"), _TEXT.filter(lambda t: t != "cause cleared")),
    st.tuples(st.just("issued_at.sec"), st.integers(-3, 3).filter(bool)),
    st.tuples(st.just("issued_at.nanosec"), st.integers(1, 999_999_999)),
    st.tuples(st.just("nonce.flip"), st.tuples(st.integers(0, 15), st.integers(0, 7))),
    st.tuples(st.just("nonce.length"), st.integers(0, 40).filter(lambda n: n != 16)),
    st.tuples(st.just("signature.truncate"), st.integers(0, 63)),
    st.tuples(st.just("signature.flip"), st.tuples(st.integers(0, 63), st.integers(0, 7))),
    st.tuples(st.just("signature.extend"), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("signature.wrong_key"), st.sampled_from(["random", "officer", "forger_ca"])),
)


def _mutate(fields: dict[str, Any], signature: bytes, mutation: tuple[str, Any]) -> tuple[dict[str, Any], bytes]:
    fields = {**fields, "issued_at": dict(fields["issued_at"])}
    what, value = mutation
    if what in ("guardian_id", "robot_id", "argument", "reason"):
        fields[what] = value
    elif what == "action":
        fields["action"] = int(value)
    elif what == "issued_at.sec":
        fields["issued_at"]["sec"] += value
    elif what == "issued_at.nanosec":
        fields["issued_at"]["nanosec"] = value
    elif what == "nonce.flip":
        index, bit = value
        nonce = bytearray(fields["nonce"])
        nonce[index] ^= 1 << bit
        fields["nonce"] = bytes(nonce)
    elif what == "nonce.length":
        fields["nonce"] = (fields["nonce"] * 3)[:value]
    elif what == "signature.truncate":
        signature = signature[:value]
    elif what == "signature.flip":
        index, bit = value
        flipped = bytearray(signature)
        flipped[index] ^= 1 << bit
        signature = bytes(flipped)
    elif what == "signature.extend":
        signature += value
    else:
        key = {"random": ed25519.Ed25519PrivateKey.generate(), "officer": OFFICER.key,
               "forger_ca": FORGER.key}[value]
        signature = OPERATOR.command(nonce=fields["nonce"], key=key)[1]
    return fields, signature


@pytest.mark.clause("6.3", "3.1b")
def test_no_single_mutation_of_a_signed_command_is_accepted() -> None:
    check = verifier().check
    tried: dict[str, int] = {}
    accepted: list[tuple[str, Any]] = []

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutation=FIELD_MUTATIONS)
    def mutated_command_is_refused(mutation: tuple[str, Any]) -> None:
        fields, signature = OPERATOR.command()
        verdict = check(*_mutate(fields, signature, mutation), 1.0, WALL)
        tried[mutation[0]] = tried.get(mutation[0], 0) + 1
        if verdict.accepted or verdict.authorization is not None:
            accepted.append(mutation)
        # the refused attempt used up nothing: the genuine command is still accepted
        assert check(fields, signature, 1.0, WALL).accepted

    mutated_command_is_refused()
    assert accepted == []
    assert sum(tried.values()) >= 300 and len(tried) == 13, tried


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8), st.binary(max_size=20))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                               max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(overrides=st.dictionaries(st.sampled_from(["guardian_id", "robot_id", "action", "argument", "reason",
                                                   "issued_at", "nonce", "extra"]), _VALUES, max_size=4),
       signature=st.one_of(st.binary(max_size=80), _SCALARS))
def test_hostile_fields_never_raise_and_are_never_accepted(overrides: dict[str, Any], signature: Any) -> None:
    fields, _ = OPERATOR.command()
    fields.update(overrides)
    verdict = VERIFIER_FOR_HOSTILE_INPUT.check(fields, signature, 0.0, WALL)
    assert not verdict.accepted and verdict.refusal is not None and "\n" not in verdict.reason


VERIFIER_FOR_HOSTILE_INPUT = verifier()


# -- state machine: the supervisor leaves a latched stop only with an accepted, fresh RESET ------------


class GuardedSupervisorMachine(RuleBasedStateMachine):
    """Stops, valid / replayed / forged / unauthorized RESETs and verifier restarts against the supervisor."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="ftrobot-replay-"))
        self.memory_path = self.directory / "guardian_nonces"
        self.now = 0.0
        self.supervisor = Supervisor(SupervisorConfig(), self.now)
        self.supervisor.boot_check(True, "verified", self.now)
        self.supervisor.reanchored(self.now)
        self.before = self.supervisor.output
        self.verifier = self._new_verifier()
        self.sent: list[tuple[dict[str, Any], bytes, Refusal]] = []  # every RESET sent, how its replay is refused
        self.accepted_nonces: set[bytes] = set()
        self.tokens: list[AuthenticatedReset] = []               # every authorization a check() returned
        self.unlatched_by: AuthenticatedReset | None = None

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _new_verifier(self) -> GuardianCommandVerifier:
        return verifier(memory=ReplayMemory(self.memory_path, 10.0, clock=lambda: self.wall))

    @property
    def wall(self) -> dt.datetime:
        return WALL + dt.timedelta(seconds=self.now)

    def _apply(self, out: SupervisorOutput, authorization: AuthenticatedReset | None = None) -> None:
        if self.before.latched and not out.latched:
            assert authorization is not None and any(authorization is token for token in self.tokens), out
            self.unlatched_by = authorization
        self.before = out

    def _reset(self, fields: dict[str, Any], signature: bytes, expect: set[Refusal | None], cleared: bool) -> None:
        nonce_was_new = fields["nonce"] not in self.accepted_nonces
        verdict = self.verifier.check(fields, signature, self.now, self.wall)
        assert verdict.refusal in expect, verdict
        if verdict.accepted:
            assert nonce_was_new and verdict.role in DEFAULT_ROLE_POLICY.roles_allowed(GuardianAction.RESET)
            assert verdict.authorization is not None
            self.accepted_nonces.add(fields["nonce"])
            self.tokens.append(verdict.authorization)
        else:
            assert verdict.authorization is None
        if verdict.authorization is not None:
            self._apply(self.supervisor.reset(verdict.authorization, cleared, self.now), verdict.authorization)

    @rule(seconds=st.sampled_from([0.0, 0.3, 1.5, 4.0, 12.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self._apply(self.supervisor.tick(self.now))

    @rule(mode=st.sampled_from(STOP_MODES))
    def stop(self, mode: SafetyMode) -> None:
        self._apply(self.supervisor.stop(mode, f"guardian:{OPERATOR.guardian_id}", "test", self.now))
        assert self.supervisor.output.latched

    @rule(cleared=st.booleans(), guardian=st.sampled_from([OPERATOR, MAINTAINER]))
    def valid_reset(self, cleared: bool, guardian: Guardian) -> None:
        fields, signature = guardian.command(issued=self.wall)
        self.sent.append((fields, signature, Refusal.REPLAYED))
        self._reset(fields, signature, {None}, cleared)

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def replayed_reset(self, data: st.DataObject) -> None:
        fields, signature, refusal = data.draw(st.sampled_from(self.sent))
        self._reset(fields, signature, {refusal, Refusal.STALE}, True)

    @rule(how=st.sampled_from(["wrong key", "officer key", "changed reason", "truncated"]))
    def forged_reset(self, how: str) -> None:
        fields, signature = OPERATOR.command(issued=self.wall)
        if how == "wrong key":
            signature = OPERATOR.command(nonce=fields["nonce"], issued=self.wall,
                                         key=ed25519.Ed25519PrivateKey.generate())[1]
        elif how == "officer key":
            signature = OPERATOR.command(nonce=fields["nonce"], issued=self.wall, key=OFFICER.key)[1]
        elif how == "changed reason":
            fields["reason"] = "cause cleared (trust me)"
        else:
            signature = signature[:63]
        self._reset(fields, signature, {Refusal.FORGED}, True)
        self.sent.append((fields, signature, Refusal.FORGED))

    @rule()
    def reset_from_a_role_not_allowed(self) -> None:
        fields, signature = OFFICER.command(issued=self.wall)
        self._reset(fields, signature, {Refusal.ROLE_NOT_ALLOWED}, True)
        self.sent.append((fields, signature, Refusal.ROLE_NOT_ALLOWED))

    @rule()
    def verifier_restarts(self) -> None:
        self.verifier = self._new_verifier()

    @invariant()
    def latched_until_a_fresh_accepted_reset(self) -> None:
        out = self.supervisor.output
        if out.mode in STOP_MODES:
            assert out.latched and not out.forward_commands


GuardedSupervisorMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
test_guarded_supervisor = pytest.mark.clause("6.3", "2.7")(GuardedSupervisorMachine.TestCase)


def test_the_state_machine_can_leave_a_stop() -> None:
    """The machine's invariant is not vacuous: a valid RESET with the cause cleared does leave the stop."""
    machine = GuardedSupervisorMachine()
    try:
        machine.stop(SafetyMode.SAFE_STOP)
        machine.time_passes(0.3)
        machine.valid_reset(True, OPERATOR)
        assert machine.unlatched_by is not None and not machine.supervisor.output.latched
        machine.stop(SafetyMode.ESTOP)
        machine.time_passes(0.3)
        machine.replayed_reset(_Draw(machine.sent[-1]))
        machine.forged_reset("wrong key")
        machine.reset_from_a_role_not_allowed()
        machine.verifier_restarts()
        machine.replayed_reset(_Draw(machine.sent[0]))
        final = machine.supervisor.output
        assert final.latched and final.mode is SafetyMode.ESTOP
    finally:
        machine.teardown()


class _Draw:
    def __init__(self, value: Any) -> None:
        self.value = value

    def draw(self, strategy: Any) -> Any:
        return self.value


def test_policies_other_than_the_default_are_honoured() -> None:
    strict = RolePolicy.from_mapping({"operator": ["ESTOP"]})
    check = verifier(policy=strict).check
    refused(check(*OPERATOR.command(GuardianAction.RESET), 0.0, WALL), Refusal.ROLE_NOT_ALLOWED)
    assert check(*OPERATOR.command(GuardianAction.ESTOP), 0.0, WALL).accepted
    assert CertificateVerifier([DEPARTMENT.ca]).verify_guardian(OPERATOR.der, WALL).role == "operator"
