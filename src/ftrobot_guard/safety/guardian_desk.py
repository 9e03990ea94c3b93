"""The guard's desk for guardian commands: obey a stop first, authenticate, then act or refuse.

One signed ``ftrobot_msgs/GuardianCommand`` (as its field mapping and signature) goes in; a
:class:`GuardianOutcome` (the ``ftrobot_msgs/GuardianCommandResult`` fields) comes out, after the
guard has done what the command asks, or has refused it with the verifier's reason.

* **A stop is never refused.** ESTOP, SAFE_STOP, POWER_DOWN and PAUSE are read from the raw message and
  obeyed *before* the signature is checked (the check costs no time on the stop path). A stop that then
  fails authentication stays in force and is flagged: ``obeyed`` true, ``accepted`` false, the refusal
  and reason given. Resuming from it needs an authenticated guardian like any other.
* REDUCE, RESUME, RESET and HANDOVER act only when authenticated and allowed for the guardian's role
  (:class:`~ftrobot_guard.guardians.command_authentication.GuardianCommandVerifier`). A signed RESET is
  the guardian's word that the cause is cleared; the supervisor still refuses it while a stopping
  anomaly is active, and says so (``obeyed`` false, refusal ``NOT_RESET``).
* ACKNOWLEDGE belongs to the incident service (``incidents/acknowledge``); here it is refused as
  ``WRONG_CHANNEL`` without being authenticated, so its nonce stays usable there.

Every outcome is published on ``guardian/result`` and recorded in the black box by the node.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ftrobot_guard.guardians.command_authentication import GuardianCommandVerifier, GuardianVerdict
from ftrobot_guard.guardians.duty_roster import DutyRoster, HandoverRefused
from ftrobot_guard.guardians.guardian_commands import GuardianAction, action_of, stop_action_of
from ftrobot_guard.safety.modes import SafetyMode
from ftrobot_guard.safety.supervisor import SupervisorOutput

MAX_TEXT = 200
_STOP_MODES = {GuardianAction.ESTOP: SafetyMode.ESTOP, GuardianAction.SAFE_STOP: SafetyMode.SAFE_STOP,
               GuardianAction.POWER_DOWN: SafetyMode.POWER_DOWN}


class GuardTarget(Protocol):
    """What the desk drives: :class:`~ftrobot_guard.safety.guard_core.GuardCore`."""

    @property
    def output(self) -> SupervisorOutput: ...

    def stop(self, now: float, mode: SafetyMode, source: str, cause: str, damp: bool = False) -> SupervisorOutput: ...

    def pause(self, now: float, source: str, cause: str) -> SupervisorOutput: ...

    def reduce(self, now: float, source: str, cause: str) -> SupervisorOutput: ...

    def resume(self, now: float, source: str, cause: str) -> SupervisorOutput: ...

    def reset(self, now: float, authorization: Any, cause_cleared: bool) -> SupervisorOutput: ...


@dataclass(frozen=True)
class GuardianOutcome:
    """What became of one guardian command (``ftrobot_msgs/GuardianCommandResult``)."""

    guardian_id: str          # as claimed
    action: int               # the raw action number (0 when unreadable)
    nonce: bytes              # as received ("" when unreadable)
    accepted: bool            # authenticated and allowed
    obeyed: bool              # the robot did what was asked (every stop: True)
    refusal: str              # "" or FORGED, REPLAYED, ..., NOT_RESET, HANDOVER_REFUSED, WRONG_CHANNEL
    detail: str               # one line
    mode: SafetyMode          # after the command
    duty_changed: bool = False


def _clip(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _text(fields: Mapping[str, Any] | Any, name: str) -> str:
    value = fields.get(name, "") if isinstance(fields, Mapping) else ""
    return _clip(value) if isinstance(value, str) else ""


def _nonce(fields: Mapping[str, Any] | Any) -> bytes:
    value = fields.get("nonce", b"") if isinstance(fields, Mapping) else b""
    try:
        return bytes(value)[:64]
    except (TypeError, ValueError):
        return b""


class GuardianDesk:
    """Handles guardian commands for one guard: ``verifier`` authenticates, ``roster`` keeps who is on duty."""

    def __init__(self, target: GuardTarget, verifier: GuardianCommandVerifier, roster: DutyRoster) -> None:
        self._target = target
        self._verifier = verifier
        self._roster = roster

    @property
    def on_duty(self) -> str:
        return self._roster.on_duty

    def handle(self, now: float, wall_clock: dt.datetime, fields: Mapping[str, Any] | Any,
               signature: bytes | Any) -> GuardianOutcome:
        claimed = _text(fields, "guardian_id") or "?"
        raw_action = fields.get("action") if isinstance(fields, Mapping) else None
        action = action_of(raw_action)
        number = int(action) if action is not None else 0
        nonce = _nonce(fields)
        reason = _text(fields, "reason")
        source = f"guardian:{claimed}"
        stop = stop_action_of(raw_action)
        if stop is not None:   # obeyed before authentication: stopping is always easy
            self._obey_stop(now, stop, source, f"guardian {stop.name}" + (f": {reason}" if reason else ""))
        if action == GuardianAction.ACKNOWLEDGE:
            return GuardianOutcome(claimed, number, nonce, False, False, "WRONG_CHANNEL",
                                   "an incident is acknowledged through the incidents/acknowledge service",
                                   self._target.output.mode)
        verdict = self._verifier.check(fields, signature if isinstance(signature, bytes) else b"", now, wall_clock)
        if stop is not None:
            mode = self._target.output.mode
            if verdict.accepted:
                return GuardianOutcome(claimed, number, nonce, True, True, "", f"{stop.name} by {claimed}: "
                                       f"now {mode.name}", mode)
            return GuardianOutcome(claimed, number, nonce, False, True, verdict.refusal.name if verdict.refusal
                                   else "REFUSED", f"obeyed, not authenticated: {verdict.reason}", mode)
        if not verdict.accepted or verdict.action is None:
            refusal = verdict.refusal.name if verdict.refusal is not None else "REFUSED"
            return GuardianOutcome(claimed, number, nonce, False, False, refusal, verdict.reason,
                                   self._target.output.mode)
        return self._act(now, wall_clock, verdict, fields, nonce, reason)

    def _obey_stop(self, now: float, stop: GuardianAction, source: str, cause: str) -> None:
        if stop == GuardianAction.PAUSE:
            self._target.pause(now, source, cause)
        else:
            self._target.stop(now, _STOP_MODES[stop], source, cause)

    def _act(self, now: float, wall_clock: dt.datetime, verdict: GuardianVerdict, fields: Mapping[str, Any],
             nonce: bytes, reason: str) -> GuardianOutcome:
        guardian = verdict.guardian_id
        source = f"guardian:{guardian}"
        action = verdict.action
        assert action is not None
        cause = f"guardian {action.name}" + (f": {reason}" if reason else "")
        if action == GuardianAction.REDUCE:
            output = self._target.reduce(now, source, cause)
            obeyed = output.mode == SafetyMode.REDUCED or output.mode.latched or output.mode == SafetyMode.PAUSED
            return self._outcome(verdict, nonce, obeyed, "" if obeyed else "NOT_REDUCED", output)
        if action == GuardianAction.RESUME:
            output = self._target.resume(now, source, cause)
            return self._outcome(verdict, nonce, output.accepted, "" if output.accepted else "NOTHING_TO_RESUME",
                                 output)
        if action == GuardianAction.RESET:
            output = self._target.reset(now, verdict.authorization, True)
            return self._outcome(verdict, nonce, output.accepted, "" if output.accepted else "NOT_RESET", output)
        if action == GuardianAction.HANDOVER:
            outgoing = _text(fields, "argument")
            try:
                self._roster.handover(guardian, outgoing, wall_clock)
            except HandoverRefused as exc:
                return GuardianOutcome(guardian, int(action), nonce, True, False, "HANDOVER_REFUSED", _clip(exc),
                                       self._target.output.mode)
            return GuardianOutcome(guardian, int(action), nonce, True, True, "",
                                   f"{guardian} on duty (took over from {outgoing})", self._target.output.mode,
                                   duty_changed=True)
        return GuardianOutcome(guardian, int(action), nonce, True, False, "UNSUPPORTED",
                               f"{action.name} is not handled by the guard", self._target.output.mode)

    @staticmethod
    def _outcome(verdict: GuardianVerdict, nonce: bytes, obeyed: bool, refusal: str,
                 output: SupervisorOutput) -> GuardianOutcome:
        action = verdict.action
        assert action is not None
        return GuardianOutcome(verdict.guardian_id, int(action), nonce, True, obeyed, refusal, _clip(output.note),
                               output.mode)
