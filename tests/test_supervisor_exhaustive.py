"""The supervisor's transition table, checked exhaustively.

Every event of a finite alphabet (stops of each kind, anomalies of each severity raised and cleared, boot
results, REDUCE/RESUME, RESET fresh/stale/not-cleared, re-anchoring, short and long time steps) is applied
to every reachable state, breadth first, until no new state appears: since the transition is a pure
function of (state, event), this covers every event sequence of any length. States are compared up to
what cannot change behaviour (absolute time, transition count, cause text). Each edge is checked for the
safety properties; the search must visit every state at least twice and every mode at least twice along
one sequence. A second, literal pass enumerates all event sequences to depth 4 without merging states.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.safety.modes import SafetyMode
from ftrobot_guard.safety.response_policy import Response, ResponsePolicy, Severity
from ftrobot_guard.safety.supervisor import (
    STOP_MODES,
    AnomalyEvent,
    BootCheck,
    Event,
    PauseRequest,
    Reanchored,
    ReduceRequest,
    ResetRequest,
    ResumeRequest,
    StopAction,
    StopRequest,
    SupervisorConfig,
    SupervisorOutput,
    SupervisorState,
    Tick,
    initial_state,
    transition,
)
from test_supervisor import RANK, Guardians

ESCALATION = 30.0
CONFIGS = {
    category: SupervisorConfig(policy=ResponsePolicy(safe_stop_escalation=ESCALATION, estop_category=category,
                                                     kind_responses={"fall": Response.DAMP,
                                                                     "falling": Response.TUCK}))
    for category in (1, 2)
}
GUARDIANS = Guardians()


@dataclass(frozen=True)
class Step:
    name: str
    advance: float                                   # s of time before the event
    make: Callable[[float], Event]                   # the event, given the time it happens


def _anomaly(kind: str, severity: Severity, active: bool) -> Callable[[float], Event]:
    return lambda now: AnomalyEvent(kind, "subject", severity, active)


ALPHABET = (
    Step("boot_pass", 0.0, lambda now: BootCheck(True)),
    Step("boot_fail", 0.0, lambda now: BootCheck(False, "envelope expired")),
    Step("safe_stop", 0.0, lambda now: StopRequest(SafetyMode.SAFE_STOP, "guardian:G", "pause")),
    Step("power_down", 0.0, lambda now: StopRequest(SafetyMode.POWER_DOWN, "detector:battery", "low")),
    Step("power_down_damp", 0.0, lambda now: StopRequest(SafetyMode.POWER_DOWN, "detector:inputs", "lost", True)),
    Step("estop", 0.0, lambda now: StopRequest(SafetyMode.ESTOP, "estop", "pressed")),
    Step("warning_on", 0.0, _anomaly("tilt", Severity.WARNING, True)),
    Step("warning_off", 0.0, _anomaly("tilt", Severity.WARNING, False)),
    Step("error_on", 0.0, _anomaly("tracking", Severity.ERROR, True)),
    Step("error_off", 0.0, _anomaly("tracking", Severity.ERROR, False)),
    Step("fall_on", 0.0, _anomaly("fall", Severity.INFO, True)),
    Step("fall_off", 0.0, _anomaly("fall", Severity.INFO, False)),
    Step("falling_on", 0.0, _anomaly("falling", Severity.CRITICAL, True)),
    Step("falling_off", 0.0, _anomaly("falling", Severity.CRITICAL, False)),
    Step("reduce", 0.0, lambda now: ReduceRequest("guardian:G", "crowd")),
    Step("pause", 0.0, lambda now: PauseRequest("guardian:G", "break")),
    Step("resume", 0.0, lambda now: ResumeRequest("guardian:G", "done")),
    Step("reset", 0.0, lambda now: ResetRequest(GUARDIANS.token(now), True)),
    Step("reset_not_cleared", 0.0, lambda now: ResetRequest(GUARDIANS.token(now), False)),
    Step("reset_early", 0.0, lambda now: ResetRequest(GUARDIANS.token(now - 1.0), True)),  # before a new stop?
    Step("reset_stale", 0.0, lambda now: ResetRequest(GUARDIANS.token(now - 3.0), True)),
    Step("reanchored", 0.0, lambda now: Reanchored()),
    Step("tick", 10.0, lambda now: Tick()),
    Step("tick_escalation", ESCALATION, lambda now: Tick()),
)


def key(state: SupervisorState) -> tuple[object, ...]:
    """The state up to what cannot change behaviour: times relative to now and clipped where they stop
    mattering, no transition count, no cause or source text."""
    hold = None if state.hold_since is None else max(state.hold_since - state.now, -ESCALATION - 1.0)
    since = max(state.since - state.now, -4.0)   # tokens are at most 3 s old: older stops compare alike
    return (state.mode, state.action, hold, since, state.boot_passed, state.reduce_request is not None,
            tuple((a.kind, a.severity, a.response) for a in state.anomalies), state.awaiting_reanchor)


def check_edge(config: SupervisorConfig, before: SupervisorState, step: Step, event: Event, after: SupervisorState,
               out: SupervisorOutput) -> None:
    """The safety properties of one transition."""
    where = f"{step.name} from {before.mode.name}/{before.action.name}"
    # outputs agree with the state and the hardware contract
    assert out.mode is after.mode and out.latched == after.mode.latched, where
    assert (out.actuation_request is ActuationMode.NORMAL) == (out.mode in (SafetyMode.NORMAL, SafetyMode.REDUCED))
    assert out.speed_scale == {SafetyMode.NORMAL: 1.0, SafetyMode.REDUCED: config.reduced_speed_scale}.get(
        out.mode, 0.0), where
    if out.forward_commands:
        assert out.mode.forwards_motion and not after.awaiting_reanchor, where
    if after.mode in STOP_MODES:
        assert after.action >= StopAction.HOLD and not out.forward_commands, where
    # every stop takes effect within the call, never below what was asked
    if isinstance(event, StopRequest):
        assert after.mode in STOP_MODES and RANK[after.mode] >= RANK[event.mode], where
        if event.damp:
            assert after.action is StopAction.DAMP, where
    if isinstance(event, AnomalyEvent) and event.active:
        response = config.policy.response_to(event.kind, event.severity)
        if response.stops:
            assert after.mode in STOP_MODES, where
        if response is Response.DAMP:
            assert after.action is StopAction.DAMP, where
        if response is Response.TUCK:  # a fall under way: the tuck, or DAMP if that was already asked
            assert after.action in (StopAction.TUCK, StopAction.DAMP), where
    # latched: left only by a valid RESET; never downgraded
    valid_reset = isinstance(event, ResetRequest) and out.accepted
    if before.mode.latched and not valid_reset:
        assert after.mode.latched and RANK[after.mode] >= RANK[before.mode], where
        assert after.action >= before.action, where
    if valid_reset:
        assert isinstance(event, ResetRequest) and event.cause_cleared and before.mode.latched, where
        assert not any(a.response.stops for a in before.anomalies), where
        assert event.authorization.authenticated_at >= before.since, where
        assert after.awaiting_reanchor and not out.forward_commands, where
    # leaving BOOT: only by a passing self-check (or into a stop)
    if before.mode is SafetyMode.BOOT and after.mode.forwards_motion:
        assert isinstance(event, BootCheck) and event.passed and after.awaiting_reanchor, where
    # escalation: a holding stop is lowered once held for the escalation time
    if before.mode in STOP_MODES and before.action is StopAction.HOLD and before.hold_since is not None \
            and before.now + step.advance - before.hold_since >= ESCALATION and not valid_reset:
        assert after.action >= StopAction.LOWER, where
        if before.mode is SafetyMode.SAFE_STOP:
            assert after.mode is not SafetyMode.SAFE_STOP, where
    assert out.transition_count >= before.transition_count


def explore(config: SupervisorConfig) -> tuple[dict[tuple[object, ...], int], int, int, dict[SafetyMode, int]]:
    """Breadth-first search to the fixpoint; returns visits per state, depth, edges, most visits of each mode
    along one path."""
    start = initial_state(0.0)
    visits = {key(start): 1}
    mode_twice: dict[SafetyMode, int] = {start.mode: 1}
    queue: deque[tuple[SupervisorState, int, tuple[tuple[SafetyMode, int], ...]]] = deque(
        [(start, 0, ((start.mode, 1),))])
    depth = edges = 0
    while queue:
        state, level, counts = queue.popleft()
        depth = max(depth, level)
        for step in ALPHABET:
            now = state.now + step.advance
            event = step.make(now)
            after, out = transition(config, state, event, now)
            check_edge(config, state, step, event, after, out)
            edges += 1
            k = key(after)
            seen = dict(counts)
            seen[after.mode] = seen.get(after.mode, 0) + 1
            mode_twice[after.mode] = max(mode_twice.get(after.mode, 0), seen[after.mode])
            if k in visits:
                visits[k] += 1
                continue
            visits[k] = 1
            queue.append((after, level + 1, tuple(sorted(seen.items()))))
    return visits, depth, edges, mode_twice


def test_every_reachable_state_and_event_keeps_the_safety_properties() -> None:
    for category, config in CONFIGS.items():
        started = time.perf_counter()
        visits, depth, edges, mode_visits = explore(config)
        elapsed = time.perf_counter() - started
        print(f"ESTOP category {category}: {len(visits)} states, {edges} transitions checked, "
              f"fixpoint at depth {depth}, {elapsed:.1f} s")
        assert {state[0] for state in visits} == set(SafetyMode)
        assert min(visits.values()) >= 2, "a state was reached only once"
        assert all(mode_visits[mode] >= 2 for mode in SafetyMode), mode_visits


def test_all_event_sequences_to_depth_4_literally() -> None:
    """No merging of states: every sequence of 4 events from BOOT (23^4 = 279,841 sequences)."""
    config = CONFIGS[1]
    sequences = 0
    seen_modes: set[SafetyMode] = set()

    def walk(state: SupervisorState, remaining: int) -> None:
        nonlocal sequences
        if remaining == 0:
            sequences += 1
            return
        for step in ALPHABET:
            now = state.now + step.advance
            event = step.make(now)
            after, out = transition(config, state, event, now)
            check_edge(config, state, step, event, after, out)
            seen_modes.add(after.mode)
            walk(after, remaining - 1)

    walk(initial_state(0.0), 4)
    assert sequences == len(ALPHABET) ** 4
    assert seen_modes == set(SafetyMode)
