"""The latched safety supervisor and the authenticated RESET: unit cases and a hypothesis state machine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ftrobot_guard.guardians.command_authentication import (
    AuthenticatedReset,
    GuardianCommandVerifier,
    GuardianVerdict,
    Refusal,
)
from ftrobot_guard.guardians.guardian_commands import GuardianAction
from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.safety.modes import SafetyMode
from ftrobot_guard.safety.response_policy import Response, ResponsePolicy, Severity
from ftrobot_guard.safety.supervisor import (
    STOP_MEASURES,
    STOP_MODES,
    AnomalyEvent,
    StopAction,
    Supervisor,
    SupervisorConfig,
    SupervisorOutput,
)
from guardian_testkit import OTHER_ROBOT, WALL, Department, verifier_for

GUARDIAN = "G-440304-0007"
RANK = {SafetyMode.SAFE_STOP: 1, SafetyMode.POWER_DOWN: 2, SafetyMode.ESTOP: 3}


class Guardians:
    """A department CA, one registered guardian and the verifier the guard uses: an AuthenticatedReset comes only
    from the verdict on an accepted RESET (GuardianCommandVerifier.check(...).authorization)."""

    def __init__(self, role: str = "operator") -> None:
        self.department = Department()  # keys generated per run, never committed
        self.guardian = self.department.guardian(GUARDIAN, role)
        self.verifier: GuardianCommandVerifier = verifier_for(self.department, {GUARDIAN: self.guardian.der})
        self._tokens: dict[float, AuthenticatedReset] = {}

    def command(self, action: GuardianAction = GuardianAction.RESET, **change: Any) -> tuple[dict[str, Any], bytes]:
        """The signed fields and signature of a command from the guardian (``change``: Guardian.command's keywords)."""
        return self.guardian.command(action, reason="cause cleared: floor dried", **change)

    def check(self, fields: Any, signature: bytes, now: float = 0.0, wall: dt.datetime = WALL) -> GuardianVerdict:
        return self.verifier.check(fields, signature, now, wall)

    def token(self, now: float) -> AuthenticatedReset:
        """A RESET authenticated at supervisor time ``now`` (one per time: tokens carry no nonce of their own)."""
        if now not in self._tokens:
            verdict = self.check(*self.command(), now)
            assert verdict.authorization is not None, verdict
            self._tokens[now] = verdict.authorization
        return self._tokens[now]


def refused(verdict: GuardianVerdict, refusal: Refusal, fragment: str) -> None:
    """Refused for ``refusal``, one line naming ``fragment``, and no AuthenticatedReset."""
    assert (verdict.accepted, verdict.refusal, verdict.authorization) == (False, refusal, None), verdict
    assert fragment in verdict.reason and "\n" not in verdict.reason, verdict.reason


@pytest.fixture(scope="module")
def guardians() -> Guardians:
    return Guardians()


def running(now: float = 0.0, config: SupervisorConfig | None = None) -> Supervisor:
    supervisor = Supervisor(config or SupervisorConfig(), now)
    supervisor.boot_check(True, "identity and envelope verified", now)
    supervisor.reanchored(now)
    assert supervisor.output.forward_commands
    return supervisor


# -- BOOT, re-anchoring ----------------------------------------------------------------------------


def test_boot_forwards_nothing_until_the_self_check_passes_and_commands_are_reanchored() -> None:
    supervisor = Supervisor(SupervisorConfig(), 0.0)
    out = supervisor.output
    assert out.mode is SafetyMode.BOOT and not out.forward_commands and out.actuation_request is ActuationMode.HOLD
    out = supervisor.boot_check(False, "envelope signature expired", 1.0)
    assert out.mode is SafetyMode.BOOT and "envelope signature expired" in out.cause and out.transition_count == 0
    out = supervisor.reanchored(1.5)
    assert not out.accepted and not out.forward_commands
    out = supervisor.boot_check(True, "", 2.0)
    assert out.mode is SafetyMode.NORMAL and out.reanchor_required and not out.forward_commands
    assert out.actuation_request is ActuationMode.NORMAL and out.speed_scale == 1.0 and out.transition_count == 1
    out = supervisor.reanchored(2.1)
    assert out.forward_commands and not out.reanchor_required and out.changed


# -- stops -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "action", "actuation"), [
    (SafetyMode.SAFE_STOP, StopAction.HOLD, ActuationMode.HOLD),
    (SafetyMode.POWER_DOWN, StopAction.LOWER, ActuationMode.HOLD),
    (SafetyMode.ESTOP, StopAction.LOWER, ActuationMode.HOLD),
])
def test_every_stop_takes_effect_in_the_same_call(mode: SafetyMode, action: StopAction,
                                                   actuation: ActuationMode) -> None:
    supervisor = running()
    out = supervisor.stop(mode, "guardian:G-1", "visitor too close", 1.0)
    assert out.mode is mode and out.latched and out.action is action and out.actuation_request is actuation
    assert not out.forward_commands and out.speed_scale == 0.0 and out.changed and out.since == 1.0
    assert out.source == "guardian:G-1" and out.cause == "visitor too close"


def test_a_stop_is_accepted_in_boot_and_latches() -> None:
    supervisor = Supervisor(SupervisorConfig(), 0.0)
    out = supervisor.estop("estop", "e-stop message", 0.1)
    assert out.mode is SafetyMode.ESTOP
    out = supervisor.boot_check(True, "", 0.2)
    assert out.mode is SafetyMode.ESTOP and not out.forward_commands


def test_a_lesser_or_equal_stop_never_downgrades() -> None:
    supervisor = running()
    supervisor.estop("estop", "pressed", 1.0)
    for mode in (SafetyMode.SAFE_STOP, SafetyMode.POWER_DOWN, SafetyMode.ESTOP):
        out = supervisor.stop(mode, "detector:x", "later", 2.0)
        assert out.mode is SafetyMode.ESTOP and out.cause == "pressed" and not out.accepted and "ignored" in out.note
    supervisor = running()
    supervisor.stop(SafetyMode.SAFE_STOP, "guardian:G-1", "pause", 1.0)
    out = supervisor.stop(SafetyMode.POWER_DOWN, "detector:battery", "battery low", 2.0)
    assert out.mode is SafetyMode.POWER_DOWN and out.action is StopAction.LOWER and out.transition_count == 3


def test_damping_is_never_undone_by_a_milder_action() -> None:
    supervisor = running()
    out = supervisor.stop(SafetyMode.POWER_DOWN, "detector:fall", "fall under way", 1.0, damp=True)
    assert out.action is StopAction.DAMP and out.actuation_request is ActuationMode.DAMPING
    out = supervisor.estop("estop", "pressed", 1.1)   # higher mode, milder action: the action stays
    assert out.mode is SafetyMode.ESTOP and out.action is StopAction.DAMP


def test_estop_category_2_holds_then_lowers_on_power_down_or_escalation() -> None:
    config = SupervisorConfig(policy=ResponsePolicy(estop_category=2, safe_stop_escalation=30.0))
    supervisor = running(config=config)
    out = supervisor.estop("estop", "pressed", 1.0)
    assert out.mode is SafetyMode.ESTOP and out.action is StopAction.HOLD
    out = supervisor.stop(SafetyMode.POWER_DOWN, "detector:battery", "battery empty", 2.0)
    assert out.mode is SafetyMode.ESTOP and out.action is StopAction.LOWER and out.accepted
    supervisor = running(config=config)
    supervisor.estop("estop", "pressed", 1.0)
    assert supervisor.tick(30.9).action is StopAction.HOLD
    out = supervisor.tick(31.0)
    assert out.mode is SafetyMode.ESTOP and out.action is StopAction.LOWER and "escalated" in out.note


def test_unresolved_safe_stop_escalates_to_power_down_at_any_event() -> None:
    supervisor = running()
    supervisor.stop(SafetyMode.SAFE_STOP, "guardian:G-1", "pause", 10.0)
    assert supervisor.tick(39.99).mode is SafetyMode.SAFE_STOP
    out = supervisor.reduce("guardian:G-1", "crowd", 40.0)   # any event checks the timer
    assert out.mode is SafetyMode.POWER_DOWN and out.action is StopAction.LOWER and out.source == "supervisor"
    assert "SAFE_STOP unresolved for 30 s (pause)" in out.cause


def test_time_going_backwards_or_nan_neither_undoes_nor_delays_a_stop() -> None:
    supervisor = running(now=100.0)
    out = supervisor.stop(SafetyMode.SAFE_STOP, "detector:x", "y", float("nan"))
    assert out.mode is SafetyMode.SAFE_STOP and out.since == 100.0
    assert supervisor.tick(50.0).mode is SafetyMode.SAFE_STOP
    assert supervisor.tick(130.0).mode is SafetyMode.POWER_DOWN


# -- anomalies, REDUCED -----------------------------------------------------------------------------


def test_anomaly_severities_map_to_responses() -> None:
    supervisor = running()
    out = supervisor.anomaly(AnomalyEvent("tilt", "pelvis", Severity.WARNING, True), 1.0)
    assert out.mode is SafetyMode.REDUCED and out.speed_scale == 0.3 and out.forward_commands
    assert out.active_anomalies == ("tilt",)
    out = supervisor.anomaly(AnomalyEvent("tilt", "pelvis", Severity.WARNING, False), 2.0)
    assert out.mode is SafetyMode.NORMAL and out.active_anomalies == ()
    out = supervisor.anomaly(AnomalyEvent("stale_input", "imu", Severity.INFO, True), 3.0)
    assert out.mode is SafetyMode.NORMAL and out.accepted and "recorded" in out.note
    out = supervisor.anomaly(AnomalyEvent("tracking_error", "left_knee_joint", Severity.ERROR, True), 4.0)
    assert out.mode is SafetyMode.SAFE_STOP and "tracking_error" in out.cause
    out = supervisor.anomaly(AnomalyEvent("battery", "battery", Severity.CRITICAL, True), 5.0)
    assert out.mode is SafetyMode.POWER_DOWN
    with pytest.raises(ValueError):
        AnomalyEvent("x", "y", 7, True)  # type: ignore[arg-type]


def test_kind_responses_only_make_things_stricter() -> None:
    policy = ResponsePolicy(kind_responses={"fall": Response.DAMP, "noisy": Response.RECORD})
    supervisor = running(config=SupervisorConfig(policy=policy))
    out = supervisor.anomaly(AnomalyEvent("noisy", "imu", Severity.ERROR, True), 1.0)
    assert out.mode is SafetyMode.SAFE_STOP      # a kind cannot soften ERROR to RECORD
    out = supervisor.anomaly(AnomalyEvent("fall", "pelvis", Severity.WARNING, True), 2.0)
    assert out.mode is SafetyMode.POWER_DOWN and out.action is StopAction.DAMP


@pytest.mark.parametrize("override", [None, *Response])
def test_a_stop_the_hardware_made_by_itself_is_damped_at_critical_whatever_the_envelope_says(
        override: Response | None) -> None:
    """hardware_stopped at CRITICAL (a power cut, a second stop): lowering would ask the hardware for NORMAL
    again (an automatic restart after its protective stop); no envelope makes it milder than DAMP. At ERROR
    (a first DAMPING) the envelope's answer stands (SAFE_STOP by default: the guard holds the robot)."""
    policy = ResponsePolicy(kind_responses={} if override is None else {"hardware_stopped": override})
    assert policy.response_to("hardware_stopped", Severity.CRITICAL) is Response.DAMP
    at_error = policy.response_to("hardware_stopped", Severity.ERROR)
    assert at_error is (Response.SAFE_STOP if override is None or override.rank <= Response.SAFE_STOP.rank
                        else override)
    assert policy.response_to("other_kind", Severity.CRITICAL) is Response.POWER_DOWN  # this kind's answer only
    out = running(config=SupervisorConfig(policy=policy)).anomaly(
        AnomalyEvent("hardware_stopped", "guard_alive_timeout", Severity.CRITICAL, True), 1.0)
    assert (out.mode, out.action) == (SafetyMode.POWER_DOWN, StopAction.DAMP)
    assert out.actuation_request is ActuationMode.DAMPING


@pytest.mark.clause("6.7c")
def test_a_fall_under_way_tucks_whatever_the_robot_was_doing_and_damp_still_wins() -> None:
    policy = ResponsePolicy(kind_responses={"fall_under_way": Response.TUCK})
    supervisor = running(config=SupervisorConfig(policy=policy))
    out = supervisor.anomaly(AnomalyEvent("fall_under_way", "pelvis", Severity.CRITICAL, True), 1.0)
    assert (out.mode, out.action, out.forward_commands) == (SafetyMode.POWER_DOWN, StopAction.TUCK, False)
    assert out.actuation_request is ActuationMode.HOLD   # until the guard's sequencer streams the tuck
    out = supervisor.stop(SafetyMode.POWER_DOWN, "detector:battery", "low", 1.1)
    assert out.action is StopAction.TUCK                 # a lowering asked later does not undo the tuck
    out = supervisor.stop(SafetyMode.POWER_DOWN, "detector:inputs", "lost", 1.2, damp=True)
    assert out.action is StopAction.DAMP                 # inputs lost: DAMPING, the tuck needs them
    out = supervisor.anomaly(AnomalyEvent("fall_under_way", "pelvis", Severity.CRITICAL, True), 1.3)
    assert out.action is StopAction.DAMP                 # never back down from DAMP

    lowering = running(config=SupervisorConfig(policy=policy))
    assert lowering.stop(SafetyMode.POWER_DOWN, "guardian:G-1", "end of day", 1.0).action is StopAction.LOWER
    out = lowering.anomaly(AnomalyEvent("fall_under_way", "pelvis", Severity.WARNING, True), 2.0)
    assert (out.mode, out.action, out.changed) == (SafetyMode.POWER_DOWN, StopAction.TUCK, True)

    category_2 = running(config=SupervisorConfig(policy=ResponsePolicy(kind_responses={"fall_under_way": Response.TUCK},
                                                                       estop_category=2)))
    assert category_2.estop("estop", "pressed", 1.0).action is StopAction.HOLD
    out = category_2.anomaly(AnomalyEvent("fall_under_way", "pelvis", Severity.CRITICAL, True), 1.5)
    assert (out.mode, out.action) == (SafetyMode.ESTOP, StopAction.TUCK)   # ESTOP kept, the fall answered
    assert set(STOP_MEASURES) == set(StopAction)                          # every action has its incident words


def test_reduced_holds_while_a_request_or_a_warning_stands() -> None:
    supervisor = running()
    assert supervisor.reduce("guardian:G-1", "school visit", 1.0).mode is SafetyMode.REDUCED
    supervisor.anomaly(AnomalyEvent("thermal", "left_knee_joint", Severity.WARNING, True), 2.0)
    out = supervisor.resume("guardian:G-1", "visit over", 3.0)
    assert out.mode is SafetyMode.REDUCED and "still reduced: anomaly thermal" in out.note
    out = supervisor.anomaly(AnomalyEvent("thermal", "left_knee_joint", Severity.WARNING, False), 4.0)
    assert out.mode is SafetyMode.NORMAL and out.forward_commands   # no stop was left: no re-anchoring needed


def test_pause_holds_a_running_robot_until_resume_then_re_anchors() -> None:
    supervisor = running()
    out = supervisor.pause("guardian:G-1", "crowd at the counter", 1.0)
    assert out.mode is SafetyMode.PAUSED and out.changed and not out.latched
    assert not out.forward_commands and out.actuation_request is ActuationMode.HOLD and out.speed_scale == 0.0
    assert supervisor.tick(500.0).mode is SafetyMode.PAUSED          # a pause does not escalate
    assert not supervisor.pause("guardian:G-1", "again", 501.0).accepted
    out = supervisor.resume("guardian:G-1", "crowd gone", 502.0)
    assert out.mode is SafetyMode.NORMAL and out.reanchor_required and not out.forward_commands
    assert supervisor.reanchored(502.1).forward_commands


def test_pause_keeps_a_standing_reduction_and_a_stop_overrides_it() -> None:
    supervisor = running()
    supervisor.anomaly(AnomalyEvent("thermal", "left_knee_joint", Severity.WARNING, True), 1.0)
    assert supervisor.pause("guardian:G-1", "break", 2.0).mode is SafetyMode.PAUSED
    assert supervisor.resume("guardian:G-1", "break over", 3.0).mode is SafetyMode.REDUCED
    supervisor.pause("guardian:G-1", "break", 4.0)
    assert supervisor.estop("estop", "button", 5.0).mode is SafetyMode.ESTOP
    out = supervisor.resume("guardian:G-1", "try", 6.0)
    assert out.mode is SafetyMode.ESTOP and not out.accepted and "RESET" in out.note


def test_pause_is_ignored_when_not_running() -> None:
    supervisor = Supervisor(SupervisorConfig(), 0.0)
    assert supervisor.pause("guardian:G-1", "x", 1.0).mode is SafetyMode.BOOT
    supervisor = running()
    supervisor.stop(SafetyMode.SAFE_STOP, "supervisor", "test", 1.0)
    assert supervisor.pause("guardian:G-1", "x", 2.0).mode is SafetyMode.SAFE_STOP


# -- RESET -----------------------------------------------------------------------------------------


def test_reset_needs_a_fresh_authenticated_reset_and_the_cause_cleared(guardians: Guardians) -> None:
    supervisor = running()
    supervisor.anomaly(AnomalyEvent("tracking_error", "left_knee_joint", Severity.ERROR, True), 10.0)
    out = supervisor.reset(guardians.token(9.0), True, 10.5)
    assert out.mode is SafetyMode.SAFE_STOP and "before this stop began" in out.note
    out = supervisor.reset(guardians.token(10.1), True, 13.0)
    assert out.mode is SafetyMode.SAFE_STOP and "more than 2 s" in out.note
    out = supervisor.reset(guardians.token(11.0), False, 11.0)
    assert out.mode is SafetyMode.SAFE_STOP and "cause is not cleared" in out.note and not out.accepted
    out = supervisor.reset(guardians.token(11.2), True, 11.2)
    assert out.mode is SafetyMode.SAFE_STOP and "tracking_error (left_knee_joint) still active" in out.note
    supervisor.anomaly(AnomalyEvent("tracking_error", "left_knee_joint", Severity.ERROR, False), 11.5)
    assert supervisor.output.mode is SafetyMode.SAFE_STOP        # clearing the anomaly does not unlatch
    out = supervisor.reset(guardians.token(12.0), True, 12.5)
    assert out.mode is SafetyMode.NORMAL and out.accepted and out.source == f"guardian:{GUARDIAN}"
    assert not out.forward_commands and out.reanchor_required   # re-anchor to the measured posture first
    assert supervisor.reanchored(12.6).forward_commands


def test_reset_before_boot_passed_returns_to_boot(guardians: Guardians) -> None:
    supervisor = Supervisor(SupervisorConfig(), 0.0)
    supervisor.estop("estop", "pressed during boot", 1.0)
    out = supervisor.reset(guardians.token(2.0), True, 2.0)
    assert out.mode is SafetyMode.BOOT and out.actuation_request is ActuationMode.HOLD


def test_reset_outside_a_latched_stop_changes_nothing(guardians: Guardians) -> None:
    supervisor = running()
    out = supervisor.reset(guardians.token(1.0), True, 1.0)
    assert out.mode is SafetyMode.NORMAL and not out.accepted and not out.changed


def test_an_authenticated_reset_cannot_be_made_or_changed_by_hand(guardians: Guardians) -> None:
    with pytest.raises(TypeError):
        AuthenticatedReset(GUARDIAN, "operator", 0.0, seal=object())
    with pytest.raises(TypeError):
        AuthenticatedReset(GUARDIAN, "operator", 0.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        type("Fake", (AuthenticatedReset,), {})
    with pytest.raises(TypeError):
        type("Lenient", (GuardianCommandVerifier,), {})
    token = guardians.token(0.0)
    with pytest.raises(AttributeError):
        token._authenticated_at = 99.0
    import copy
    import pickle
    with pytest.raises(TypeError):
        copy.copy(token)
    with pytest.raises(TypeError):
        pickle.dumps(token)
    supervisor = running()
    supervisor.estop("estop", "pressed", 1.0)
    out = supervisor.reset("G-440304-0007", True, 1.0)  # type: ignore[arg-type]
    assert out.mode is SafetyMode.ESTOP and "not an authenticated RESET" in out.note


def test_only_an_accepted_reset_carries_an_authenticated_reset(guardians: Guardians) -> None:
    estop = guardians.check(*guardians.command(GuardianAction.ESTOP), 3.0)
    assert estop.accepted and estop.action is GuardianAction.ESTOP and estop.authorization is None
    reset = guardians.check(*guardians.command(), 3.5)
    assert reset.accepted and reset.action is GuardianAction.RESET and reset.authorization is not None
    token = reset.authorization
    assert (token.guardian_id, token.role, token.authenticated_at) == (GUARDIAN, "operator", 3.5)


@pytest.mark.parametrize(("change", "tamper", "refusal", "fragment"), [
    ({"robot": OTHER_ROBOT}, {}, Refusal.WRONG_ROBOT, "addressed to robot"),
    ({"guardian_id": "G-999"}, {}, Refusal.UNKNOWN_GUARDIAN, "not registered"),
    ({"issued": WALL - dt.timedelta(seconds=30)}, {}, Refusal.STALE, "more than 5 s from now"),
    ({}, {"nonce": b"short"}, Refusal.MALFORMED, "nonce must be 16 bytes"),
    ({"key": ed25519.Ed25519PrivateKey.generate()}, {}, Refusal.FORGED, "signature does not verify"),
])
def test_reset_refusals_carry_no_authenticated_reset(guardians: Guardians, change: dict[str, Any],
                                                      tamper: dict[str, Any], refusal: Refusal,
                                                      fragment: str) -> None:
    fields, signature = guardians.command(**change)
    fields.update(tamper)   # after signing: what a sender could put on the wire
    refused(guardians.check(fields, signature), refusal, fragment)


def test_replayed_tampered_unauthorized_and_expired_resets_carry_no_authenticated_reset(guardians: Guardians) -> None:
    fields, signature = guardians.command()
    token = guardians.check(fields, signature, 5.0).authorization
    assert token is not None and token.guardian_id == GUARDIAN
    refused(guardians.check(fields, signature, 5.1), Refusal.REPLAYED, "replayed")
    fields, signature = guardians.command()
    fields["reason"] = "changed after signing"
    refused(guardians.check(fields, signature, 5.2), Refusal.FORGED, "signature does not verify")
    visitor = Guardians(role="visitor_guide")
    refused(visitor.check(*visitor.command()), Refusal.ROLE_NOT_ALLOWED, "may not RESET")
    fields, signature = guardians.command()
    refused(guardians.check(fields, signature, 0.0, WALL + dt.timedelta(days=400)), Refusal.CERTIFICATE_INVALID,
            "certificate refused")
    refused(guardians.check({"action": 7}, signature), Refusal.MALFORMED, "exactly the fields")


# -- stateful: no event sequence leaves a latched stop without a valid RESET ------------------------


def _stopped_within_the_call(out: SupervisorOutput, requested: SafetyMode) -> None:
    assert out.mode in STOP_MODES and RANK[out.mode] >= RANK[requested]
    assert not out.forward_commands and out.actuation_request is not ActuationMode.NORMAL and out.latched


class SupervisorMachine(RuleBasedStateMachine):
    guardians = Guardians()

    @initialize(estop_category=st.sampled_from([1, 2]))
    def start(self, estop_category: int) -> None:
        self.config = SupervisorConfig(policy=ResponsePolicy(estop_category=estop_category,
                                                             kind_responses={"fall": Response.DAMP,
                                                                             "falling": Response.TUCK}))
        self.now = 0.0
        self.supervisor = Supervisor(self.config, self.now)
        self.before = self.supervisor.output
        self.reset_accepted = False

    def _apply(self, out: SupervisorOutput) -> SupervisorOutput:
        before = self.before
        if before.latched and not self.reset_accepted:
            assert out.latched and RANK[out.mode] >= RANK[before.mode], (before, out)
            assert out.action >= before.action
        if out.forward_commands:
            assert out.mode in (SafetyMode.NORMAL, SafetyMode.REDUCED) and not out.reanchor_required
        if out.mode.forwards_motion and not before.mode.forwards_motion:
            assert not out.forward_commands   # leaving BOOT or a stop: re-anchor first
        self.before, self.reset_accepted = out, False
        return out

    @rule(dt_=st.sampled_from([0.0, 0.01, 0.5, 2.5, 29.0, 31.0]))
    def time_passes(self, dt_: float) -> None:
        self.now += dt_
        self._apply(self.supervisor.tick(self.now))

    @rule(mode=st.sampled_from(STOP_MODES), damp=st.booleans(), source=st.sampled_from(["estop", "guardian:G-1",
                                                                                        "detector:tilt"]))
    def stop(self, mode: SafetyMode, damp: bool, source: str) -> None:
        damp = damp and mode is not SafetyMode.SAFE_STOP
        out = self._apply(self.supervisor.stop(mode, source, "test", self.now, damp=damp))
        _stopped_within_the_call(out, mode)
        if damp:
            assert out.action is StopAction.DAMP

    @rule(kind=st.sampled_from(["tilt", "tracking_error", "fall", "falling"]), severity=st.sampled_from(list(Severity)),
          active=st.booleans())
    def anomaly(self, kind: str, severity: Severity, active: bool) -> None:
        out = self._apply(self.supervisor.anomaly(AnomalyEvent(kind, "subject", severity, active), self.now))
        response = self.config.policy.response_to(kind, severity)
        if active and response.stops:
            _stopped_within_the_call(out, SafetyMode.POWER_DOWN if response.rank >= Response.POWER_DOWN.rank
                                     else SafetyMode.SAFE_STOP)

    @rule(passed=st.booleans())
    def boot(self, passed: bool) -> None:
        before = self.before
        out = self._apply(self.supervisor.boot_check(passed, "check", self.now))
        if before.mode is SafetyMode.BOOT and passed:
            assert out.mode in (SafetyMode.NORMAL, SafetyMode.REDUCED)
        if not passed and before.mode is not SafetyMode.BOOT:
            assert out.mode in STOP_MODES

    @rule()
    def reduce(self) -> None:
        self._apply(self.supervisor.reduce("guardian:G-1", "crowd", self.now))

    @rule()
    def pause(self) -> None:
        before = self.before
        out = self._apply(self.supervisor.pause("guardian:G-1", "break", self.now))
        if before.mode.forwards_motion:
            assert out.mode is SafetyMode.PAUSED and not out.forward_commands
        else:
            assert out.mode is before.mode

    @rule()
    def resume(self) -> None:
        before = self.before
        out = self._apply(self.supervisor.resume("guardian:G-1", "done", self.now))
        if before.mode is SafetyMode.PAUSED:
            assert out.mode in (SafetyMode.NORMAL, SafetyMode.REDUCED) and not out.forward_commands

    @rule()
    def reanchored(self) -> None:
        self._apply(self.supervisor.reanchored(self.now))

    @rule(cleared=st.booleans(), age=st.sampled_from([0.0, 1.0, 3.0]))
    def reset(self, cleared: bool, age: float) -> None:
        before = self.before
        token = self.guardians.token(self.now - age)
        out = self.supervisor.reset(token, cleared, self.now)
        stopping = [a for a in self.supervisor.state.anomalies if a.response.stops]
        valid = (before.latched and cleared and age <= self.config.policy.reset_max_age and not stopping
                 and token.authenticated_at >= before.since)
        if before.latched:
            assert out.accepted == valid and (out.latched != valid), (before, out)
        self.reset_accepted = out.accepted
        self._apply(out)

    @precondition(lambda self: self.before.latched)
    @invariant()
    def a_latched_stop_forwards_nothing(self) -> None:
        out = self.supervisor.output
        assert not out.forward_commands and out.actuation_request is not ActuationMode.NORMAL
        assert out.speed_scale == 0.0


SupervisorMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                               suppress_health_check=[HealthCheck.too_slow])
test_supervisor_state_machine = SupervisorMachine.TestCase
