"""The latched safety supervisor: a pure state machine over the safety modes (DESIGN.md §3).

:func:`transition` maps (state, event, time) to the next state and what to do now; :class:`Supervisor`
keeps the state for a node. No clock, no threads, no rclpy: the caller passes the time (monotonic or
sim-time seconds; a time that goes backwards or is not finite is taken as the last one seen).

Rules:

* **A stop is accepted from any source at any time** (:class:`StopRequest`; anomalies whose response
  stops; a failed self-check after boot) and takes effect in the same call: the returned output
  already holds the stop mode, ``forward_commands`` false and the actuation request.
* **Never downgraded**: stops are ranked SAFE_STOP < POWER_DOWN < ESTOP; a lesser or equal stop
  leaves the mode as it is. The stop *action* is ranked too, HOLD < LOWER < TUCK < DAMP, and only rises
  (a POWER_DOWN during an ESTOP of category 2 keeps ESTOP and lowers the robot).
* **Escalation**: a stop that holds (SAFE_STOP, ESTOP of category 2) for ``safe_stop_escalation``
  seconds without a RESET is lowered: SAFE_STOP becomes POWER_DOWN; ESTOP stays ESTOP with action
  LOWER. Checked at every call, so a :class:`Tick` is only needed when nothing else happens.
* **Latched**: SAFE_STOP, POWER_DOWN and ESTOP are left only by :class:`ResetRequest`, which carries an
  :class:`~ftrobot_guard.guardians.command_authentication.AuthenticatedReset` (only a verifier can make one),
  authenticated after the stop began and at most ``reset_max_age`` s ago, with the guardian's word that
  the cause is cleared and no stopping anomaly still active. Otherwise only a restart (BOOT) leaves.
* **Re-anchoring**: on entering NORMAL or REDUCED from BOOT or a stop, ``reanchor_required`` is set and
  ``forward_commands`` stays false until the gate has re-anchored its command stream to the measured
  posture and says so (:class:`Reanchored`): no jump to a stale target.
* **Pause**: a guardian's PAUSE (:class:`PauseRequest`) holds a running robot in PAUSED (power kept, no
  escalation, not latched); RESUME (:class:`ResumeRequest`) leaves it, re-anchored, to NORMAL or REDUCED.
  The caller lets only an authenticated guardian RESUME through. Any stop from PAUSED is a stop.
* BOOT is left by a passing self-check (:class:`BootCheck`), to NORMAL (REDUCED if a reduction stands).
  REDUCED is not latched: it holds while a REDUCE request or a REDUCE-response anomaly stands.

Actuation (hardware contract, :mod:`ftrobot_guard.hardware.actuation_modes`): NORMAL/REDUCED → NORMAL;
BOOT, PAUSED, SAFE_STOP, ESTOP category 2 → HOLD; POWER_DOWN and ESTOP category 1 → HOLD now, then the lowering
sequence (action LOWER: lower to rest through the gate, DAMPING, POWER_OFF — run by the POWER_DOWN
sequencer); action TUCK (a fall under way) → the sequencer's protective tuck through the gate (forwards or
backwards; sideways DAMPING), then DAMPING, then POWER_OFF; action DAMP (inputs or battery lost) → DAMPING
now, then POWER_OFF.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace

from ftrobot_guard.guardians.command_authentication import AuthenticatedReset
from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.safety.envelope import Envelope
from ftrobot_guard.safety.modes import SafetyMode
from ftrobot_guard.safety.response_policy import Response, ResponsePolicy, Severity

STOP_MODES = (SafetyMode.SAFE_STOP, SafetyMode.POWER_DOWN, SafetyMode.ESTOP)
_STOP_RANK = {SafetyMode.SAFE_STOP: 1, SafetyMode.POWER_DOWN: 2, SafetyMode.ESTOP: 3}
MAX_TEXT = 200


class StopAction(enum.IntEnum):
    """What the actuators do, ordered by how far it goes."""

    NONE = 0    # motion forwarded (NORMAL, REDUCED)
    HOLD = 1    # hold the posture, power kept (BOOT, SAFE_STOP, ESTOP category 2)
    LOWER = 2   # lower to rest through the gate, then DAMPING, then POWER_OFF (POWER_DOWN, ESTOP category 1)
    TUCK = 3    # a fall under way: a protective tuck through the gate (sideways: DAMPING), then DAMPING, POWER_OFF
    DAMP = 4    # DAMPING at once, then POWER_OFF (lowering impossible or too late)


# What was done, in an incident report's words.
STOP_MEASURES = {
    StopAction.NONE: "none",
    StopAction.HOLD: "stopped, posture held with power kept",
    StopAction.LOWER: "stopped, lowering to rest, then damping and motor power off",
    StopAction.TUCK: "fall under way: a protective tuck (forwards or backwards; sideways damped at once), then "
                     "damping and motor power off",
    StopAction.DAMP: "stopped, joints damped at once, then motor power off",
}

# The hardware mode asked for on entering the action. LOWER and TUCK hold until the guard's POWER_DOWN
# sequencer says otherwise (safety/guard_core.py runs it at once for TUCK: the tuck streams through NORMAL).
_ACTUATION = {StopAction.NONE: ActuationMode.NORMAL, StopAction.HOLD: ActuationMode.HOLD,
              StopAction.LOWER: ActuationMode.HOLD, StopAction.TUCK: ActuationMode.HOLD,
              StopAction.DAMP: ActuationMode.DAMPING}


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True)
class StopRequest:
    """Stop now: e-stop device or message, guardian, detector, supervisor."""

    mode: SafetyMode      # SAFE_STOP, POWER_DOWN or ESTOP
    source: str           # "estop", "guardian:<id>", "detector:<name>", "supervisor", "boot"
    cause: str
    damp: bool = False    # POWER_DOWN / ESTOP: DAMPING at once instead of lowering

    def __post_init__(self) -> None:
        if self.mode not in STOP_MODES:
            raise ValueError(f"a stop request asks for SAFE_STOP, POWER_DOWN or ESTOP, not {self.mode!r}")
        if self.damp and self.mode == SafetyMode.SAFE_STOP:
            raise ValueError("SAFE_STOP holds the posture: damping is a POWER_DOWN or ESTOP request")


@dataclass(frozen=True)
class AnomalyEvent:
    """An anomaly raised (``active``) or cleared by a detector."""

    kind: str
    subject: str
    severity: Severity
    active: bool
    source: str = "detector"

    def __post_init__(self) -> None:
        if isinstance(self.severity, bool) or self.severity not in set(Severity):  # type: ignore[unreachable]
            raise ValueError(f"anomaly severity {self.severity!r} is not one of {[s.value for s in Severity]}")
        object.__setattr__(self, "severity", Severity(self.severity))
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError("an anomaly needs a kind")


@dataclass(frozen=True)
class BootCheck:
    """The self-check's result (identity, signed envelope, inputs alive)."""

    passed: bool
    cause: str = ""


@dataclass(frozen=True)
class ReduceRequest:
    source: str
    cause: str


@dataclass(frozen=True)
class PauseRequest:
    """A guardian's PAUSE: hold a running robot (NORMAL, REDUCED) until RESUME."""

    source: str
    cause: str


@dataclass(frozen=True)
class ResumeRequest:
    """Leave PAUSED and withdraw a standing REDUCE request."""

    source: str
    cause: str


@dataclass(frozen=True)
class ResetRequest:
    authorization: AuthenticatedReset
    cause_cleared: bool   # the guardian's statement that the cause of the stop is cleared


@dataclass(frozen=True)
class Reanchored:
    """The gate has re-anchored its command stream to the measured posture."""


@dataclass(frozen=True)
class Tick:
    """Time passed (escalation)."""


Event = (StopRequest | AnomalyEvent | BootCheck | ReduceRequest | PauseRequest | ResumeRequest | ResetRequest
         | Reanchored | Tick)


# ---------------------------------------------------------------------------------------------
# State and output


@dataclass(frozen=True)
class SupervisorConfig:
    policy: ResponsePolicy = field(default_factory=ResponsePolicy)
    reduced_speed_scale: float = 0.3

    def __post_init__(self) -> None:
        if not (math.isfinite(self.reduced_speed_scale) and 0.0 < self.reduced_speed_scale <= 1.0):
            raise ValueError("reduced_speed_scale must be in (0, 1]")

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> SupervisorConfig:
        return cls(policy=envelope.responses, reduced_speed_scale=envelope.reduced.speed_scale)


@dataclass(frozen=True)
class ActiveAnomaly:
    kind: str
    subject: str
    severity: Severity
    response: Response


@dataclass(frozen=True)
class SupervisorState:
    mode: SafetyMode
    cause: str
    source: str
    since: float                          # when the mode was entered
    transition_count: int
    action: StopAction
    hold_since: float | None              # when the current holding stop began (escalation timer)
    boot_passed: bool
    reduce_request: tuple[str, str] | None  # (source, cause) of a standing REDUCE request
    anomalies: tuple[ActiveAnomaly, ...]  # active, sorted by (kind, subject)
    awaiting_reanchor: bool
    now: float


def initial_state(now: float, cause: str = "starting") -> SupervisorState:
    """BOOT: nothing forwarded, the hardware holds."""
    start = float(now) if isinstance(now, (int, float)) and math.isfinite(now) else 0.0
    return SupervisorState(SafetyMode.BOOT, _clip(cause), "supervisor", start, 0, StopAction.HOLD, None, False, None,
                           (), True, start)


@dataclass(frozen=True)
class SupervisorOutput:
    """What the supervisor says after one event (``SafetyState`` fields plus what to do now)."""

    mode: SafetyMode
    cause: str
    source: str
    since: float
    latched: bool
    speed_scale: float                    # 1 NORMAL, (0, 1) REDUCED, 0 otherwise
    transition_count: int
    action: StopAction
    actuation_request: ActuationMode      # the hardware mode to be in now
    forward_commands: bool                # the gate may forward motion
    reanchor_required: bool               # the gate must re-anchor to the measured posture, then send Reanchored
    active_anomalies: tuple[str, ...]
    changed: bool                         # mode, action or forwarding changed in this call
    accepted: bool                        # the event had its effect (False: ignored or refused, see note)
    note: str                             # what happened, one line (for the record)


def _output(config: SupervisorConfig, before: SupervisorState, state: SupervisorState, accepted: bool,
            note: str) -> SupervisorOutput:
    forward = state.mode.forwards_motion and not state.awaiting_reanchor
    was_forwarding = before.mode.forwards_motion and not before.awaiting_reanchor
    scale = {SafetyMode.NORMAL: 1.0, SafetyMode.REDUCED: config.reduced_speed_scale}.get(state.mode, 0.0)
    return SupervisorOutput(
        mode=state.mode, cause=state.cause, source=state.source, since=state.since, latched=state.mode.latched,
        speed_scale=scale, transition_count=state.transition_count, action=state.action,
        actuation_request=_ACTUATION[state.action], forward_commands=forward,
        reanchor_required=state.mode.forwards_motion and state.awaiting_reanchor,
        active_anomalies=tuple(sorted({a.kind for a in state.anomalies})),
        changed=(state.mode, state.action) != (before.mode, before.action) or forward != was_forwarding,
        accepted=accepted, note=_clip(note),
    )


# ---------------------------------------------------------------------------------------------
# Transition


def _enter(state: SupervisorState, mode: SafetyMode, source: str, cause: str, action: StopAction) -> SupervisorState:
    """Move to ``mode`` (a mode change: counted, timestamped)."""
    hold_since: float | None = None
    if action == StopAction.HOLD and mode in STOP_MODES:
        already_holding = state.action == StopAction.HOLD and state.mode in STOP_MODES
        hold_since = state.hold_since if already_holding else state.now
    stopped_or_booting = mode in STOP_MODES or mode in (SafetyMode.BOOT, SafetyMode.PAUSED)
    return replace(
        state, mode=mode, source=_clip(source), cause=_clip(cause), since=state.now,
        transition_count=state.transition_count + 1, action=action, hold_since=hold_since,
        awaiting_reanchor=True if stopped_or_booting else state.awaiting_reanchor,
    )


def _stop_action(config: SupervisorConfig, mode: SafetyMode, damp: bool, tuck: bool) -> StopAction:
    if mode == SafetyMode.SAFE_STOP:
        return StopAction.HOLD
    if damp:
        return StopAction.DAMP
    if tuck:
        return StopAction.TUCK
    if mode == SafetyMode.ESTOP and config.policy.estop_category == 2:
        return StopAction.HOLD
    return StopAction.LOWER


def _stop(config: SupervisorConfig, state: SupervisorState, mode: SafetyMode, source: str, cause: str,
          damp: bool, tuck: bool = False) -> tuple[SupervisorState, bool, str]:
    action = _stop_action(config, mode, damp, tuck)
    current = state.action if state.mode in STOP_MODES else StopAction.NONE
    new_action = max(current, action)
    if _STOP_RANK[mode] > _STOP_RANK.get(state.mode, 0):
        return _enter(state, mode, source, cause, new_action), True, f"{mode.name} by {source}: {cause}"
    if new_action > current:
        escalated = replace(state, action=new_action, hold_since=None)
        return escalated, True, f"{state.mode.name} kept, action {new_action.name} by {source}: {cause}"
    return state, False, f"{mode.name} by {source} ignored: already {state.mode.name} ({cause})"


def _reduced_by(state: SupervisorState) -> str | None:
    """Why the robot must be REDUCED now (None: it need not)."""
    if state.reduce_request is not None:
        return f"{state.reduce_request[1]} ({state.reduce_request[0]})"
    for anomaly in state.anomalies:
        if anomaly.response == Response.REDUCE:
            return f"anomaly {anomaly.kind} ({anomaly.subject})"
    return None


def _running_mode(state: SupervisorState) -> SafetyMode:
    return SafetyMode.REDUCED if _reduced_by(state) is not None else SafetyMode.NORMAL


def _settle_running(state: SupervisorState, source: str, cause: str) -> SupervisorState:
    """In NORMAL/REDUCED: switch between them as the standing reductions say."""
    if not state.mode.forwards_motion:
        return state
    target = _running_mode(state)
    if target == state.mode:
        return state
    reason = _reduced_by(state) if target == SafetyMode.REDUCED else cause
    return _enter(state, target, source, reason or cause, StopAction.NONE)


def _escalate(config: SupervisorConfig, state: SupervisorState) -> tuple[SupervisorState, str]:
    if state.mode not in STOP_MODES or state.action != StopAction.HOLD or state.hold_since is None:
        return state, ""
    held = state.now - state.hold_since
    limit = config.policy.safe_stop_escalation
    if held < limit:
        return state, ""
    cause = f"{state.mode.name} unresolved for {limit:g} s ({state.cause})"
    if state.mode == SafetyMode.SAFE_STOP:
        return _enter(state, SafetyMode.POWER_DOWN, "supervisor", cause, StopAction.LOWER), f"escalated: {cause}"
    return replace(state, action=StopAction.LOWER, hold_since=None), f"escalated to LOWER: {cause}"


def _reset(config: SupervisorConfig, state: SupervisorState, event: ResetRequest) -> tuple[SupervisorState, bool, str]:
    auth = event.authorization
    if not isinstance(auth, AuthenticatedReset):  # a caller that ignores the types
        return state, False, "reset refused: not an authenticated RESET"  # type: ignore[unreachable]
    who = f"guardian:{auth.guardian_id}"
    if not state.mode.latched:
        return state, False, f"reset by {who} ignored: {state.mode.name} is not a latched stop"
    if not state.since <= auth.authenticated_at <= state.now:
        return state, False, f"reset by {who} refused: authenticated before this stop began (or in the future)"
    if state.now - auth.authenticated_at > config.policy.reset_max_age:
        return state, False, f"reset by {who} refused: authenticated {state.now - auth.authenticated_at:.3g} s ago, " \
                             f"more than {config.policy.reset_max_age:g} s"
    if not event.cause_cleared:
        return state, False, f"reset by {who} refused: the cause is not cleared ({state.cause})"
    blocking = [a for a in state.anomalies if a.response.stops]
    if blocking:
        return state, False, f"reset by {who} refused: anomaly {blocking[0].kind} ({blocking[0].subject}) still active"
    if not state.boot_passed:
        target, action = SafetyMode.BOOT, StopAction.HOLD
    else:
        target, action = _running_mode(state), StopAction.NONE
    reset = _enter(state, target, who, f"reset by {who} after {state.mode.name} ({state.cause})", action)
    note = f"reset by {who}: {state.mode.name} -> {target.name}"
    return replace(reset, awaiting_reanchor=True, hold_since=None), True, note


def _anomaly(config: SupervisorConfig, state: SupervisorState,
             event: AnomalyEvent) -> tuple[SupervisorState, bool, str]:
    kind, subject = _clip(event.kind), _clip(event.subject)
    severity = event.severity
    others = tuple(a for a in state.anomalies if (a.kind, a.subject) != (kind, subject))
    label = f"anomaly {kind} ({subject}, {severity.name})"
    if not event.active:
        if len(others) == len(state.anomalies):
            return state, False, f"{label} cleared: was not active"
        cleared = _settle_running(replace(state, anomalies=others), event.source, f"{label} cleared")
        return cleared, True, f"{label} cleared"
    response = config.policy.response_to(kind, severity)
    active = ActiveAnomaly(kind, subject, severity, response)
    state = replace(state, anomalies=tuple(sorted((*others, active), key=lambda a: (a.kind, a.subject))))
    if response == Response.SAFE_STOP:
        stopped, _, note = _stop(config, state, SafetyMode.SAFE_STOP, event.source, label, damp=False)
        return stopped, True, note
    if response in (Response.POWER_DOWN, Response.TUCK, Response.DAMP):
        stopped, _, note = _stop(config, state, SafetyMode.POWER_DOWN, event.source, label,
                                 damp=response == Response.DAMP, tuck=response == Response.TUCK)
        return stopped, True, note
    if response == Response.REDUCE:
        return _settle_running(state, event.source, label), True, f"{label}: reduce"
    return state, True, f"{label}: recorded"


def _boot(state: SupervisorState, event: BootCheck, config: SupervisorConfig) -> tuple[SupervisorState, bool, str]:
    if event.passed:
        passed = replace(state, boot_passed=True)
        if state.mode != SafetyMode.BOOT:
            return passed, True, "self-check passed"
        target = _running_mode(passed)
        entered = _enter(passed, target, "boot", f"self-check passed{': ' + event.cause if event.cause else ''}",
                         StopAction.NONE)
        return replace(entered, awaiting_reanchor=True), True, f"self-check passed: BOOT -> {target.name}"
    cause = f"self-check failed: {event.cause or 'no reason given'}"
    failed = replace(state, boot_passed=False)
    if state.mode == SafetyMode.BOOT:
        return replace(failed, cause=_clip(cause), source="boot"), True, cause
    stopped, _, note = _stop(config, failed, SafetyMode.SAFE_STOP, "boot", cause, damp=False)
    return stopped, True, note


def transition(config: SupervisorConfig, state: SupervisorState, event: Event,
               now: float) -> tuple[SupervisorState, SupervisorOutput]:
    """The next state and the output after ``event`` at time ``now``. Pure: ``state`` is not changed."""
    before = state
    if isinstance(now, (int, float)) and not isinstance(now, bool) and math.isfinite(now) and now > state.now:
        state = replace(state, now=float(now))
    state, escalation = _escalate(config, state)
    accepted, note = True, ""
    if isinstance(event, StopRequest):
        state, accepted, note = _stop(config, state, event.mode, event.source, event.cause, event.damp)
    elif isinstance(event, AnomalyEvent):
        state, accepted, note = _anomaly(config, state, event)
    elif isinstance(event, BootCheck):
        state, accepted, note = _boot(state, event, config)
    elif isinstance(event, ReduceRequest):
        state = replace(state, reduce_request=(_clip(event.source), _clip(event.cause)))
        state = _settle_running(state, event.source, event.cause)
        note = f"reduce requested by {event.source}: {event.cause}"
    elif isinstance(event, PauseRequest):
        if state.mode.forwards_motion:
            state = _enter(state, SafetyMode.PAUSED, event.source, event.cause, StopAction.HOLD)
            note = f"PAUSED by {event.source}: {event.cause}"
        else:
            accepted, note = False, f"pause by {event.source} ignored: already {state.mode.name}"
    elif isinstance(event, ResumeRequest):
        paused = state.mode == SafetyMode.PAUSED
        accepted = state.reduce_request is not None or paused
        state = replace(state, reduce_request=None)
        if paused:
            state = _enter(state, _running_mode(state), event.source, f"resumed: {event.cause}", StopAction.NONE)
        state = _settle_running(state, event.source, f"resumed: {event.cause}")
        still = _reduced_by(state)
        note = f"resume by {event.source}" + (f" (still reduced: {still})" if still else "")
        if not accepted:
            note = f"resume by {event.source} ignored: {state.mode.name}, nothing to resume"
            if state.mode in STOP_MODES:
                note += " (a latched stop is left by a guardian RESET)"

    elif isinstance(event, ResetRequest):
        state, accepted, note = _reset(config, state, event)
    elif isinstance(event, Reanchored):
        accepted = state.mode.forwards_motion and state.awaiting_reanchor
        if accepted:
            state = replace(state, awaiting_reanchor=False)
            note = "commands re-anchored to the measured posture: forwarding"
        else:
            note = "re-anchor ignored: not awaited in this mode"
    elif isinstance(event, Tick):
        note = "tick"
    else:
        raise TypeError(f"unknown supervisor event {type(event).__name__}")
    if escalation:
        note = f"{escalation}; {note}"
    return state, _output(config, before, state, accepted, note)


class Supervisor:
    """Holds the state of :func:`transition` for a node; every method returns the new output."""

    def __init__(self, config: SupervisorConfig, now: float) -> None:
        self._config = config
        self._state = initial_state(now)
        self._output = _output(config, self._state, self._state, True, "starting in BOOT")

    @property
    def state(self) -> SupervisorState:
        return self._state

    @property
    def output(self) -> SupervisorOutput:
        return self._output

    def handle(self, event: Event, now: float) -> SupervisorOutput:
        self._state, self._output = transition(self._config, self._state, event, now)
        return self._output

    def stop(self, mode: SafetyMode, source: str, cause: str, now: float, damp: bool = False) -> SupervisorOutput:
        return self.handle(StopRequest(mode, source, cause, damp), now)

    def estop(self, source: str, cause: str, now: float) -> SupervisorOutput:
        """``estop`` (std_msgs/Bool true), e-stop device or guardian ESTOP."""
        return self.handle(StopRequest(SafetyMode.ESTOP, source, cause), now)

    def anomaly(self, event: AnomalyEvent, now: float) -> SupervisorOutput:
        return self.handle(event, now)

    def boot_check(self, passed: bool, cause: str, now: float) -> SupervisorOutput:
        return self.handle(BootCheck(passed, cause), now)

    def reduce(self, source: str, cause: str, now: float) -> SupervisorOutput:
        return self.handle(ReduceRequest(source, cause), now)

    def pause(self, source: str, cause: str, now: float) -> SupervisorOutput:
        return self.handle(PauseRequest(source, cause), now)

    def resume(self, source: str, cause: str, now: float) -> SupervisorOutput:
        return self.handle(ResumeRequest(source, cause), now)

    def reset(self, authorization: AuthenticatedReset, cause_cleared: bool, now: float) -> SupervisorOutput:
        """The guardians' RESET entry point: ``authorization`` is an accepted RESET's, from GuardianCommandVerifier."""
        return self.handle(ResetRequest(authorization, cause_cleared), now)

    def reanchored(self, now: float) -> SupervisorOutput:
        return self.handle(Reanchored(), now)

    def tick(self, now: float) -> SupervisorOutput:
        return self.handle(Tick(), now)
