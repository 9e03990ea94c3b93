"""Fault injection: strict parsing of fault requests and the schedule of faults in sim time.

Every fault has a kind, an onset (absolute sim time), a duration (0 = until cleared) and typed
parameters. Parameters come as a YAML/JSON object; unknown keys, wrong types, NaN/Inf and values out
of range are refused with a reason naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

MAX_ONSET_S = 1.0e6
MAX_DURATION_S = 1.0e6

# Topics a sensor_dropout / message_delay fault can act on (relative names of docs/design.md, § Topics and QoS).
SENSOR_TOPICS = ("joint_states", "imu", "odom", "actuator_temperatures", "battery")
INPUT_TOPICS = ("hw/joint_command", "guard/alive")
FAULT_TOPICS = SENSOR_TOPICS + INPUT_TOPICS
# sensor_dropout only: the guard's actuation requests lost (each answered "lost", nothing changes)
DROPOUT_TOPICS = (*FAULT_TOPICS, "hw/set_actuation_mode")
TRIP_DIRECTIONS = ("forward", "backward", "left", "right")


class FaultKind(StrEnum):
    PUSH = "push"
    TRIP = "trip"
    STUCK_JOINT = "stuck_joint"
    ENCODER_SPIKE = "encoder_spike"
    ENCODER_NOISE = "encoder_noise"
    ENCODER_NAN = "encoder_nan"
    SENSOR_DROPOUT = "sensor_dropout"
    MESSAGE_DELAY = "message_delay"
    OVERHEAT = "overheat"
    BATTERY_DRAIN = "battery_drain"
    ROGUE_PUBLISHER = "rogue_publisher"
    CLEAR = "clear"


class FaultRequestError(ValueError):
    """A fault request was refused; str() is the reason."""


@dataclass(frozen=True)
class FaultTargets:
    """What faults may name: the model's joints and bodies."""

    joints: tuple[str, ...]
    bodies: tuple[str, ...]


@dataclass(frozen=True)
class Fault:
    fault_id: str
    kind: FaultKind
    onset: float                 # absolute sim time, s
    duration: float              # s; 0 = until cleared
    parameters: Mapping[str, Any]
    cleared_at: float = math.inf

    @property
    def end(self) -> float:
        scheduled = self.onset + self.duration if self.duration > 0.0 else math.inf
        return min(scheduled, self.cleared_at)

    def active(self, t: float) -> bool:
        return self.onset <= t < self.end

    def label(self) -> str:
        return f"{self.fault_id}:{self.kind.value}"


# ---------------------------------------------------------------- parameter parsing

def _number(key: str, value: Any, low: float, high: float, *, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FaultRequestError(f"parameter {key}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise FaultRequestError(f"parameter {key}: NaN or Inf")
    if number < low or number > high or (open_low and number == low):
        bracket = "(" if open_low else "["
        raise FaultRequestError(f"parameter {key}: {number} is outside {bracket}{low}, {high}]")
    return number


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        shown = ", ".join(choices) if len(choices) <= 12 else f"one of the {len(choices)} model names"
        raise FaultRequestError(f"parameter {key}: {value!r} is not {shown}")
    return value


def _vector3(key: str, value: Any, limit: float) -> tuple[float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise FaultRequestError(f"parameter {key}: expected a list of 3 numbers, got {value!r}")
    vector = tuple(_number(f"{key}[{i}]", v, -limit, limit) for i, v in enumerate(value))
    return (vector[0], vector[1], vector[2])


_Spec = dict[str, tuple[bool, Any, Callable[[str, Any, FaultTargets], Any]]]


def _joint(key: str, value: Any, targets: FaultTargets) -> str:
    return _choice(key, value, targets.joints)


def _joint_or_all(key: str, value: Any, targets: FaultTargets) -> str:
    return _choice(key, value, ("all", *targets.joints))


def _num(low: float, high: float, open_low: bool = False) -> Callable[[str, Any, FaultTargets], float]:
    return lambda key, value, _t: _number(key, value, low, high, open_low=open_low)


# key -> (required, default, parser)
_PARAMETERS: dict[FaultKind, _Spec] = {
    FaultKind.PUSH: {
        "force": (True, None, lambda k, v, _t: _vector3(k, v, 5000.0)),
        "body": (False, "torso_link", lambda k, v, t: _choice(k, v, t.bodies)),
    },
    FaultKind.TRIP: {
        "direction": (False, "forward", lambda k, v, _t: _choice(k, v, TRIP_DIRECTIONS)),
        "force": (False, 250.0, _num(0.0, 3000.0, open_low=True)),
    },
    FaultKind.STUCK_JOINT: {"joint": (True, None, _joint)},
    FaultKind.ENCODER_SPIKE: {"joint": (True, None, _joint), "offset": (False, 0.5, _num(-10.0, 10.0))},
    FaultKind.ENCODER_NOISE: {"joint": (False, "all", _joint_or_all), "stddev": (False, 0.02, _num(0.0, 1.0, True))},
    FaultKind.ENCODER_NAN: {"joint": (True, None, _joint_or_all)},
    FaultKind.SENSOR_DROPOUT: {"topic": (True, None, lambda k, v, _t: _choice(k, v, DROPOUT_TOPICS))},
    FaultKind.MESSAGE_DELAY: {
        "topic": (True, None, lambda k, v, _t: _choice(k, v, FAULT_TOPICS)),
        "delay": (False, 0.05, _num(0.0, 10.0, open_low=True)),
    },
    FaultKind.OVERHEAT: {"joint": (True, None, _joint), "rate": (False, 2.0, _num(0.0, 100.0, open_low=True))},
    FaultKind.BATTERY_DRAIN: {"power": (False, 2000.0, _num(0.0, 1.0e5, open_low=True))},
    FaultKind.ROGUE_PUBLISHER: {
        "joint": (False, "left_shoulder_pitch_joint", _joint),
        "offset": (False, 0.6, _num(-3.0, 3.0)),
        "rate_hz": (False, 50.0, _num(0.0, 1000.0, open_low=True)),
    },
    FaultKind.CLEAR: {"fault_id": (False, "", lambda k, v, _t: v if isinstance(v, str) else _bad_string(k, v))},
}


def _bad_string(key: str, value: Any) -> str:
    raise FaultRequestError(f"parameter {key}: expected a string, got {value!r}")


def parse_kind(kind: Any) -> FaultKind:
    try:
        return FaultKind(kind)
    except ValueError:
        raise FaultRequestError(
            f"unknown fault kind {kind!r}: expected one of {', '.join(k.value for k in FaultKind)}"
        ) from None


def parse_parameters(
    kind: FaultKind, parameters: str | Mapping[str, Any] | None, targets: FaultTargets
) -> dict[str, Any]:
    """The fault's typed parameters with defaults filled in; FaultRequestError otherwise."""
    if parameters is None or (isinstance(parameters, str) and not parameters.strip()):
        raw: Any = {}
    elif isinstance(parameters, str):
        try:
            raw = yaml.safe_load(parameters)
        except yaml.YAMLError as exc:
            raise FaultRequestError(f"parameters are not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
        raw = {} if raw is None else raw
    else:
        raw = parameters
    if not isinstance(raw, Mapping):
        raise FaultRequestError(f"parameters must be an object (key: value), got {type(raw).__name__}")
    spec = _PARAMETERS[kind]
    unknown = sorted(str(k) for k in raw if k not in spec)
    if unknown:
        raise FaultRequestError(
            f"{kind.value}: unknown parameter(s) {', '.join(unknown)}; expected {', '.join(spec) or 'none'}"
        )
    parsed: dict[str, Any] = {}
    for key, (required, default, parser) in spec.items():
        if key in raw:
            parsed[key] = parser(key, raw[key], targets)
        elif required:
            raise FaultRequestError(f"{kind.value}: parameter {key} is required")
        else:
            parsed[key] = default
    return parsed


def parse_timing(onset: Any, duration: Any) -> tuple[float, float]:
    """(onset from now, duration) in s; duration 0 means until cleared."""
    return (
        _number("onset", onset, 0.0, MAX_ONSET_S),
        _number("duration", duration, 0.0, MAX_DURATION_S),
    )


# ---------------------------------------------------------------- schedule

@dataclass
class FaultSchedule:
    """Faults in sim time. Cleared faults stay in the history (ground truth needs their onsets)."""

    faults: list[Fault] = field(default_factory=list)
    _next_id: int = 1

    def add(self, kind: FaultKind, onset_abs: float, duration: float, parameters: Mapping[str, Any]) -> Fault:
        fault = Fault(f"f{self._next_id}", kind, onset_abs, duration, dict(parameters))
        self._next_id += 1
        self.faults.append(fault)
        return fault

    def clear(self, now: float, fault_id: str = "") -> list[Fault]:
        """End the named fault (or every fault not yet ended) at `now`; the faults that were cleared."""
        if fault_id and not any(f.fault_id == fault_id for f in self.faults):
            raise FaultRequestError(f"no fault with id {fault_id!r}")
        cleared = []
        for i, fault in enumerate(self.faults):
            if (not fault_id or fault.fault_id == fault_id) and fault.end > now:
                self.faults[i] = Fault(fault.fault_id, fault.kind, fault.onset, fault.duration, fault.parameters, now)
                cleared.append(self.faults[i])
        return cleared

    def active(self, t: float) -> list[Fault]:
        return [fault for fault in self.faults if fault.active(t)]
