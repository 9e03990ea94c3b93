"""POWER_DOWN on the simulated G1: the lowering to rest under noise and pushes, and the best response to a fall.

Lowering trials (default): the PowerDownSequencer (safety/rest_lowering.py) drives HumanoidSim exactly as
the guard node would: at the guard's control rate (``--control-rate``, default 100 Hz as config/robot.yaml; the
simulator steps at 500 Hz and holds the last target in between) it reads the newest sim.joint_state() (encoder
faults applied) and sim.imu(), streams its targets with apply_joint_command in NORMAL, and switches the
actuation mode as each step says; it starts from the posture the guard estimates from every reading of its
last 0.1 s (safety/posture_estimate.py, the noise already on). The set
varies encoder noise (0, 0.005, 0.01 rad, `encoder_noise` fault), a 15 N push on the torso during the
lowering (none, forward, backward, left, right; 3 s from t = 1 ... 38 s: arms coming down, squat, seat, legs
out, recline) and the starting posture
(standing; arms raised). Per trial: peak impact speed (contact-point approach speed at floor-contact onset),
time to rest (the sequencer's DAMPING request), the largest excursion of a joint beyond its hard limit
(truth qpos against the model's range, whole trial), the phases and fallbacks. Summary: the maximum over trials.

Fall under way (--falls): a `trip` (0.2 s; 250, 170 and 120 N) in each direction while standing in NORMAL;
the response starts when the guard would see the fall (pelvis gyro above 3 rad/s or tilt above 0.5 rad, the
envelope's limits): POWER_OFF (a power cut), DAMPING, HOLD (stiff), and FALL_RESPONSE (the sequencer's
fall_response: a tuck streamed through NORMAL when falling forwards or backwards, DAMPING sideways).

Fall under way through the guard (--guard-falls): the same trips with the guard node's core in the loop
(sim/guarded_sim.py), its detectors deciding when and its supervisor how: the committed envelope's
`fall_under_way: tuck` against `damp` (DAMPING at once).

Postures (--derive): the balanced key postures of the G1 path, derived statically on the model.

    .venv/bin/python bench/power_down_trials.py [--quick] [--falls] [--guard-falls] [--derive]
        [--seed N [N ...]] [--early]   (other encoder-noise seeds; only the raised-arms and first-second trials)
        [--control-rate HZ]            (the guard's tick; 500 is what sessions 7-10 measured)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ftrobot_guard.hardware.actuation_modes import ActuationMode  # noqa: E402
from ftrobot_guard.safety.envelope import Envelope, load_envelope  # noqa: E402
from ftrobot_guard.safety.posture_estimate import PostureEstimate  # noqa: E402
from ftrobot_guard.safety.rest_lowering import Lean, LoweringConfig, PowerDownSequencer  # noqa: E402
from ftrobot_guard.safety.tick_intake import DEFAULT_CONTROL_RATE_HZ  # noqa: E402
from ftrobot_guard.sim.humanoid_sim import HumanoidSim, SimConfig  # noqa: E402

DISTRO = os.environ.get("FTROBOT_ROS_DISTRO") or os.environ.get("ROS_DISTRO") or "unknown"
ENVELOPE_FILE = ROOT / "config" / "envelope" / "g1.yaml"
PUSH_FORCE = 15.0       # N
PUSH_DURATION = 3.0     # s
DIRECTIONS = {"forward": (1.0, 0.0), "backward": (-1.0, 0.0), "left": (0.0, 1.0), "right": (0.0, -1.0)}
ARMS_RAISED = {"left_shoulder_pitch_joint": -2.4, "right_shoulder_pitch_joint": -2.4,
               "left_elbow_joint": 0.3, "right_elbow_joint": 0.3}
FALL_GYRO = 3.0         # rad/s, envelope posture.angular_rate.limit
FALL_TILT = 0.5         # rad, envelope posture.tilt.limit
TAIL_AFTER_OFF = 1.0    # s simulated after POWER_OFF
CONTROL_RATE_HZ = DEFAULT_CONTROL_RATE_HZ  # the guard's control_rate_hz (config/robot.yaml): the lowering's tick


@dataclass(frozen=True)
class Trial:
    noise: float
    push: str                # "", or a direction
    push_onset: float        # s after the start of the lowering
    start: str               # "standing" | "arms_raised"


@dataclass(frozen=True)
class TrialResult:
    trial: Trial
    peak_impact: float
    peak_body: str
    peak_time: float         # s after the start of the lowering
    time_to_rest: float      # s from start to the DAMPING request after the rest posture (nan: fallback)
    hard_excursion: float    # rad, largest truth excursion beyond a hard limit (<= 0: none)
    excursion_joint: str
    fallback: str            # "" or the sequencer's note
    fallen: bool             # ground truth: pelvis below 0.4 m with tilt beyond 1 rad... (see sim)


def lean_of(sim: HumanoidSim) -> tuple[Lean, float]:
    imu = sim.imu()
    w, x, y, z = (float(v) for v in imu.orientation_wxyz)
    lean = Lean.from_imu((x, y, z, w), imu.angular_velocity)
    tilt = math.acos(max(-1.0, min(1.0, 1.0 - 2.0 * (x * x + y * y) / (x * x + y * y + z * z + w * w))))
    return lean, tilt


class Excursion:
    """Largest truth excursion of any joint beyond its hard (model) limit, checked every step."""

    def __init__(self, sim: HumanoidSim) -> None:
        self.sim = sim
        self.worst = -math.inf
        self.joint = ""

    def check(self) -> None:
        sim = self.sim
        q = sim.data.qpos[sim.g1.qpos_index]
        beyond = np.maximum(q - sim.g1.position_upper, sim.g1.position_lower - q)
        i = int(np.argmax(beyond))
        if beyond[i] > self.worst:
            self.worst, self.joint = float(beyond[i]), f"{sim.joint_names[i]}@{sim.mode.name}"


def settle_start_posture(sim: HumanoidSim, start: str) -> None:
    """Bring the sim into the starting posture, standing in NORMAL with its targets on it.

    "arms_raised" is set as an initial condition (joint positions written before the first step, as a
    keyframe would): under joint PD alone (no balance controller in this harness) raising the arms
    while standing topples the G1 before the lowering even starts."""
    if start == "arms_raised":
        for name, value in ARMS_RAISED.items():
            sim.data.qpos[sim.g1.qpos_index[sim.g1.joint_index(name)]] = value
        mujoco.mj_forward(sim.model, sim.data)
    sim.set_actuation_mode(ActuationMode.NORMAL)
    sim.run_for(0.5, lambda s: s.guard_alive())


def observe_posture(sim: HumanoidSim, window: float = 0.1) -> np.ndarray:
    """What the guard starts the lowering from: every joint reading of the last ``window`` s (joint_states at
    500 Hz, one per 2 ms step, the noise already on; the guard node takes them all, not only each tick's
    newest) through :class:`PostureEstimate`, as GuardCore does."""
    estimate = PostureEstimate(len(sim.joint_names), window)

    def read(s: HumanoidSim) -> None:
        s.guard_alive()
        estimate.add(s.time, s.joint_state().position)

    sim.run_for(window, read)
    return estimate.estimate()


def run_lowering(trial: Trial, envelope: Envelope, config: LoweringConfig | None = None,
                 seed: int = 1, control_rate: float = CONTROL_RATE_HZ) -> TrialResult:
    config = config or LoweringConfig()
    sim = HumanoidSim(SimConfig(require_guard_alive=False, seed=seed))
    every = max(1, round(1.0 / (control_rate * sim.timestep)))   # physics steps per control tick
    settle_start_posture(sim, trial.start)
    if trial.noise > 0.0:
        sim.inject_fault("encoder_noise", 0.0, 0.0, {"joint": "all", "stddev": trial.noise})
    posture = observe_posture(sim)
    t0 = sim.time
    if trial.push:
        ux, uy = DIRECTIONS[trial.push]
        sim.inject_fault("push", trial.push_onset, PUSH_DURATION,
                         {"force": [PUSH_FORCE * ux, PUSH_FORCE * uy, 0.0], "body": "torso_link"})
    excursion = Excursion(sim)
    sequencer = PowerDownSequencer(envelope, config)
    step = sequencer.start(sim.time, posture)
    names = sim.joint_names
    time_to_rest = math.nan
    fallback = ""
    off_at = math.nan
    limit = t0 + config.time_budget + config.damping_max + config.fallback_settle + 10.0
    while sim.time < limit:   # one control tick: act on the step, the driver runs `every` steps, then read
        if step.actuation is not sim.mode:
            sim.set_actuation_mode(step.actuation)
        if step.positions is not None and sim.mode is ActuationMode.NORMAL:
            outcome = sim.apply_joint_command(names, step.positions.tolist())
            if not outcome.success:
                raise RuntimeError(f"the sim refused a lowering command: {outcome.message}")
        if step.phase == "damping" and math.isnan(time_to_rest) and not fallback:
            if step.note.startswith("fallback"):
                fallback = step.note
            else:
                time_to_rest = sim.time - t0
        if step.finished and math.isnan(off_at):
            off_at = sim.time
        if sim.time - off_at > TAIL_AFTER_OFF:
            break
        for _ in range(every):   # between ticks the driver holds the last target
            sim.guard_alive()
            sim.step()
            excursion.check()
        reading = sim.joint_state()
        lean, tilt = lean_of(sim)
        step = sequencer.step(sim.time, reading.position, tilt, sim.battery().percentage, True, lean)
    truth = sim.ground_truth()
    peak = sim.peak_impact
    return TrialResult(trial, truth.peak_impact_speed, peak.body if peak else "", peak.time - t0 if peak else math.nan,
                       time_to_rest, excursion.worst,
                       excursion.joint, fallback, sim.recorder.first_fall_time is not None)


PUSH_ONSETS = (1.0, 5.0, 10.0, 15.0, 20.0, 26.0, 32.0, 38.0)   # s: arms, squat, seat, legs out, recline


def paced(config: LoweringConfig, pace: float) -> LoweringConfig:
    """The same path with every key posture's duration scaled by `pace` (and the time budget with it)."""
    postures = tuple(dataclasses.replace(p, duration=p.duration * pace) for p in config.postures)
    return dataclasses.replace(config, postures=postures, time_budget=config.time_budget * max(1.0, pace))


def trial_set(quick: bool) -> list[Trial]:
    """No push: noise x start posture (6). Pushes: direction x noise (0.005, 0.01) x start (16), the onsets
    cycling through PUSH_ONSETS so that every phase of the lowering is pushed in some direction; and early
    pushes on straight legs, backwards and forwards, from both starts (6)."""
    if quick:
        return [Trial(0.01, "backward", 10.0, "standing"), Trial(0.01, "forward", 1.0, "arms_raised")]
    trials = [Trial(noise, "", 0.0, start) for noise in (0.0, 0.005, 0.01) for start in ("standing", "arms_raised")]
    for i, direction in enumerate(DIRECTIONS):
        cases = [(noise, start) for noise in (0.005, 0.01) for start in ("arms_raised", "standing")]
        for j, (noise, start) in enumerate(cases):   # each direction: four onsets from arms-down to recline
            trials.append(Trial(noise, direction, PUSH_ONSETS[(2 * j + i) % len(PUSH_ONSETS)], start))
    # The first second, on straight legs, in the two directions a push tips a humanoid over its feet (session 7:
    # these fall at 4-5.6 m/s; the set above pushes forwards and backwards there only later or from one start).
    for start in ("standing", "arms_raised"):
        for direction, onset in (("backward", 0.0), ("backward", 1.0), ("forward", 0.3)):
            trials.append(Trial(0.01, direction, onset, start))
    return trials


def print_lowering(results: list[TrialResult]) -> None:
    print(f"{'noise':>6} {'push':>9} {'onset':>5} {'start':>11} | {'peak m/s':>8} {'body':>22} {'rest s':>6} "
          f"{'excursion mrad':>14} {'joint':>24} fallback")
    for r in results:
        t = r.trial
        print(f"{t.noise:6.3f} {t.push or '-':>9} {t.push_onset:5.1f} {t.start:>11} | {r.peak_impact:8.3f} "
              f"{r.peak_body or '-':>22} {r.time_to_rest:6.1f} {1000 * r.hard_excursion:14.2f} {r.excursion_joint:>24} "
              f"{r.fallback or '-'}")
    worst = max(results, key=lambda r: r.peak_impact)
    rest = [r.time_to_rest for r in results if math.isfinite(r.time_to_rest)]
    print(f"SUMMARY {len(results)} trials: max peak impact {worst.peak_impact:.3f} m/s "
          f"({worst.trial.push or 'no push'}, noise {worst.trial.noise}, {worst.trial.start}); "
          f"time to rest {min(rest, default=math.nan):.1f}-{max(rest, default=math.nan):.1f} s; "
          f"max hard-limit excursion {1000 * max(r.hard_excursion for r in results):.2f} mrad; "
          f"fallbacks {sum(1 for r in results if r.fallback)}; "
          f"all <= 0.7 m/s: {all(r.peak_impact <= 0.7 for r in results)}")
    print(json.dumps({"bench": "power_down_trials", "figure": "lowering_peak_impact_max_mps",
                      "value": round(worst.peak_impact, 4), "unit": "m/s", "n": len(results), "distro": DISTRO}))


# ----------------------------------------------------------------------------- fall under way

def fall_detected(sim: HumanoidSim) -> bool:
    imu = sim.imu()
    _, tilt = lean_of(sim)
    return float(np.linalg.norm(imu.angular_velocity)) > FALL_GYRO or tilt > FALL_TILT


def run_fall(direction: str, response: str, envelope: Envelope, force: float = 250.0) -> tuple[float, str, float]:
    """Peak impact (m/s), body, detection time after onset (s) for a trip answered by `response`:
    POWER_OFF, DAMPING, HOLD (actuation modes asked for at detection), or FALL_RESPONSE (the sequencer's
    fall_response: tuck forwards/backwards, DAMPING sideways), all from the same detection."""
    sim = HumanoidSim(SimConfig(require_guard_alive=False))
    sim.set_actuation_mode(ActuationMode.NORMAL)
    onset = 0.2
    sim.inject_fault("trip", onset, 0.2, {"direction": direction, "force": force})
    detected = math.nan
    sequencer: PowerDownSequencer | None = None
    step = None
    while sim.time < 4.0:
        if math.isnan(detected) and sim.time > onset and fall_detected(sim):
            detected = sim.time - onset
            if response == "FALL_RESPONSE":
                sequencer = PowerDownSequencer(envelope)
                step = sequencer.fall_response(sim.time, sim.joint_state().position, lean_of(sim)[0])
            else:
                sim.set_actuation_mode(ActuationMode[response])
        elif sequencer is not None:
            reading = sim.joint_state()
            lean, tilt = lean_of(sim)
            step = sequencer.step(sim.time, reading.position, tilt, 1.0, True, lean)
        if step is not None:
            if step.actuation is not sim.mode:
                sim.set_actuation_mode(step.actuation)
            if step.positions is not None and sim.mode is ActuationMode.NORMAL:
                sim.apply_joint_command(sim.joint_names, step.positions.tolist())
        sim.step()
    peak = sim.peak_impact
    return sim.ground_truth().peak_impact_speed, peak.body if peak else "", detected


FALL_RESPONSES = ("POWER_OFF", "DAMPING", "HOLD", "FALL_RESPONSE")


def print_falls(envelope: Envelope) -> None:
    for force in (250.0, 170.0, 120.0):
        print(f"trip {force:.0f} N, 0.2 s; response from the detection (gyro > {FALL_GYRO} rad/s or tilt > {FALL_TILT} rad)")
        print(f"{'direction':>9} | " + " | ".join(f"{r:>20}" for r in FALL_RESPONSES) + " | detected after")
        table: dict[str, list[float]] = {r: [] for r in FALL_RESPONSES}
        for direction in DIRECTIONS:
            cells = []
            detected = math.nan
            for response in FALL_RESPONSES:
                peak, body, detected = run_fall(direction, response, envelope, force)
                table[response].append(peak)
                cells.append(f"{peak:6.2f} {body[:13]:>13}")
            print(f"{direction:>9} | " + " | ".join(cells) + f" | {detected:.3f} s")
        print("  worst: " + ", ".join(f"{r} {max(v):.2f}" for r, v in table.items()) + " m/s")
        print("  mean:  " + ", ".join(f"{r} {sum(v) / len(v):.2f}" for r, v in table.items()) + " m/s")
        for response, values in table.items():
            print(json.dumps({"bench": "power_down_trials", "figure": f"trip{force:.0f}_peak_impact_{response.lower()}_max_mps",
                              "value": round(max(values), 4), "unit": "m/s", "n": len(values), "distro": DISTRO}))


GUARD_FALL_RESPONSES = ("tuck", "damp")


def _elbow_swing(t: float) -> tuple[tuple[str, ...], np.ndarray]:
    """The robot's own controller while it stands: the left elbow swinging slowly inside the envelope."""
    return ("left_elbow_joint",), np.array([1.0 + 0.3 * math.sin(1.5 * t)])


def print_guarded_falls() -> None:
    """The same trips through the guard itself (sim/guarded_sim.py: the guard node's core; its detectors
    decide when, its supervisor how): the envelope's `fall_under_way` response `tuck` (as committed)
    against `damp` (DAMPING at once)."""
    from ftrobot_guard.safety.dev_envelope import always_open
    from ftrobot_guard.safety.envelope import parse_envelope
    from ftrobot_guard.sim.guarded_sim import GuardedSim

    text = always_open(ENVELOPE_FILE.read_text(encoding="utf-8"))
    committed = "kind_responses: {fall_under_way: tuck}"
    if committed not in text:
        raise SystemExit(f"{ENVELOPE_FILE}: expected '{committed}'")
    envelopes = {r: parse_envelope(text.replace(committed, f"kind_responses: {{fall_under_way: {r}}}").encode())
                 for r in GUARD_FALL_RESPONSES}
    for force in (250.0, 170.0, 120.0):
        print(f"trip {force:.0f} N, 0.2 s, standing in NORMAL with the guard in the loop")
        print(f"{'direction':>9} | " + " | ".join(f"{r:>20}" for r in GUARD_FALL_RESPONSES))
        table: dict[str, list[float]] = {r: [] for r in GUARD_FALL_RESPONSES}
        for direction in DIRECTIONS:
            cells = []
            for response in GUARD_FALL_RESPONSES:
                loop = GuardedSim(envelopes[response], SimConfig(seed=1), controller=_elbow_swing)
                loop.run_for(2.0)
                loop.sim.inject_fault("trip", 0.0, 0.2, {"direction": direction, "force": force})
                loop.run_for(4.0)
                refused = [text for _t, level, text in loop.record.logs if level == "error" and "refused" in text]
                if refused:
                    print(f"  the gate refused the guard's own stream: {refused[0]}")
                peak = loop.sim.peak_impact
                table[response].append(peak.speed if peak else 0.0)
                cells.append(f"{table[response][-1]:6.2f} {(peak.body if peak else '')[:13]:>13}")
            print(f"{direction:>9} | " + " | ".join(cells), flush=True)
        print("  worst: " + ", ".join(f"{r} {max(v):.2f}" for r, v in table.items()) + " m/s")
        print("  mean:  " + ", ".join(f"{r} {sum(v) / len(v):.2f}" for r, v in table.items()) + " m/s")
        for response, values in table.items():
            print(json.dumps({"bench": "power_down_trials", "figure": f"guarded_trip{force:.0f}_peak_impact_{response}_max_mps",
                              "value": round(max(values), 4), "unit": "m/s", "n": len(values), "distro": DISTRO}))


# ----------------------------------------------------------------------------- derived postures

def derive_postures() -> None:
    """Print the G1's balanced key postures: feet flat, hip pitch solved for the centre of mass 0.035 m
    ahead of the ankles; and for the seat, the pelvis clearance and centre of mass."""
    import mujoco

    from ftrobot_guard.sim.g1_model import load_g1

    g1 = load_g1()
    m, d = g1.model, mujoco.MjData(g1.model)
    foot = g1.foot_bodies[0]
    d.qpos[:] = g1.stand_qpos
    mujoco.mj_forward(m, d)
    foot_pos, foot_rot = d.xpos[foot].copy(), d.xmat[foot].reshape(3, 3).copy()
    index = {n: i for i, n in enumerate(g1.joint_names)}

    def place(ankle: float, knee: float, hip: float, waist: float, shoulder: float) -> None:
        q = np.zeros(len(index))
        for side in ("left", "right"):
            q[index[f"{side}_hip_pitch_joint"]], q[index[f"{side}_knee_joint"]] = hip, knee
            q[index[f"{side}_ankle_pitch_joint"]], q[index[f"{side}_shoulder_pitch_joint"]] = ankle, shoulder
            q[index[f"{side}_elbow_joint"]] = 1.28
        q[index["waist_pitch_joint"]] = waist
        q[index["left_shoulder_roll_joint"]], q[index["right_shoulder_roll_joint"]] = 0.2, -0.2
        d.qpos[:] = g1.stand_qpos
        d.qpos[g1.qpos_index] = q
        d.qpos[0:3], d.qpos[3:7] = 0.0, (1.0, 0.0, 0.0, 0.0)
        mujoco.mj_kinematics(m, d)
        rotation = foot_rot @ d.xmat[foot].reshape(3, 3).T   # put the left foot where it is when standing
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, rotation.reshape(9))
        d.qpos[0:3], d.qpos[3:7] = foot_pos - rotation @ d.xpos[foot], quat
        mujoco.mj_fwdPosition(m, d)

    def com_ahead(ankle: float, knee: float, hip: float, waist: float, shoulder: float) -> float:
        place(ankle, knee, hip, waist, shoulder)
        return float(d.subtree_com[1][0] - d.xpos[foot][0])

    def pelvis_clearance() -> float:
        pelvis = [g for g in range(m.ngeom) if m.geom_bodyid[g] == g1.pelvis_body and m.geom_contype[g]]
        fromto = np.zeros(6)
        return min(mujoco.mj_geomDistance(m, d, g1.floor_geom, g, 1.0, fromto) for g in pelvis)

    print(f"{'knee':>5} {'ankle':>6} {'hip':>7} {'waist':>6} {'shoulder':>8} | {'pelvis z':>8} {'CoM ahead':>9}")
    for knee in (0.5, 1.0, 1.5, 2.0, 2.4, 2.75):
        ankle, waist, shoulder = -min(0.55, 0.5 * knee), round(0.3 * min(1.0, knee / 2.75), 2), \
            round(max(-1.5, 0.2 - 1.7 * min(1.0, knee)), 2)
        low, high = -2.45, 0.5   # CoM ahead falls as the hip flexes less
        for _ in range(40):
            mid = 0.5 * (low + high)
            if com_ahead(ankle, knee, mid, waist, shoulder) > 0.035:
                low = mid
            else:
                high = mid
        hip = 0.5 * (low + high)
        ahead = com_ahead(ankle, knee, hip, waist, shoulder)
        print(f"{knee:5.2f} {ankle:6.3f} {hip:7.3f} {waist:6.2f} {shoulder:8.2f} | "
              f"{d.xpos[g1.pelvis_body][2]:8.3f} {ahead:9.3f}")
    for ankle in (-0.55, -0.3, -0.2, -0.1):
        ahead = com_ahead(ankle, 2.75, -2.34, 0.45, -1.5)
        print(f"seat: ankle {ankle:5.2f} knee 2.75 hip -2.34 waist 0.45: pelvis clearance {pelvis_clearance():+.3f} m, "
              f"CoM {ahead:+.3f} m ahead of the ankle (heel at -0.05)")

    # Legs out while seated: the pelvis pitched back as it sits, solve the hip pitch that keeps the feet's
    # lowest point level with the pelvis's (heels on the floor), the ankle pointing (0.45 rad at most).
    def lowest(body: int) -> float:
        heights = []
        for g in range(m.ngeom):
            if m.geom_bodyid[g] != body or not m.geom_contype[g]:
                continue
            if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH:
                mesh = m.geom_dataid[g]
                vertices = m.mesh_vert[m.mesh_vertadr[mesh]:m.mesh_vertadr[mesh] + m.mesh_vertnum[mesh]]
                heights.append(float((d.geom_xpos[g] + vertices @ d.geom_xmat[g].reshape(3, 3).T)[:, 2].min()))
            else:
                heights.append(float(d.geom_xpos[g][2] - m.geom_size[g][0]))
        return min(heights)

    def feet_above_pelvis(pitch: float, knee: float, hip: float) -> float:
        q = np.zeros(len(index))
        for side in ("left", "right"):
            q[index[f"{side}_hip_pitch_joint"]], q[index[f"{side}_knee_joint"]] = hip, knee
            q[index[f"{side}_ankle_pitch_joint"]] = min(-(pitch + hip + knee), 0.45)
        d.qpos[:] = g1.stand_qpos
        d.qpos[g1.qpos_index] = q
        d.qpos[0:3], d.qpos[3:7] = (0.0, 0.0, 1.0), (np.cos(pitch / 2), 0.0, np.sin(pitch / 2), 0.0)
        mujoco.mj_kinematics(m, d)
        return lowest(foot) - lowest(g1.pelvis_body)

    seat_pitch = -0.31   # the pelvis's pitch in `sit`: -(ankle + knee + hip) = -(-0.10 + 2.75 - 2.34)
    for knee in (2.0, 1.2, 0.3):
        low, high = -2.48, -0.3
        for _ in range(40):
            mid = 0.5 * (low + high)
            if (feet_above_pelvis(seat_pitch, knee, mid) > 0.0) == (feet_above_pelvis(seat_pitch, knee, low) > 0.0):
                low = mid
            else:
                high = mid
        print(f"legs out: knee {knee:.2f} -> hip pitch {0.5 * (low + high):+.3f} keeps the heels on the floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two trials instead of the full set")
    parser.add_argument("--falls", action="store_true", help="the fall-under-way comparison only")
    parser.add_argument("--derive", action="store_true", help="print the derived key postures only")
    parser.add_argument("--guard-falls", action="store_true",
                        help="trips through the guard core: the envelope's tuck against DAMPING at once")
    parser.add_argument("--pace", type=float, default=1.0,
                        help="scale every key posture's duration (robustness to timing; push onsets scale too)")
    parser.add_argument("--seed", type=int, nargs="+", default=[1],
                        help="the simulator's seeds (encoder noise): the lowering set once per seed")
    parser.add_argument("--control-rate", type=float, default=CONTROL_RATE_HZ,
                        help="the guard's control rate (Hz): the sequencer's tick (default: config/robot.yaml's)")
    parser.add_argument("--early", action="store_true",
                        help="only the trials with raised arms or pushed in the first second (the hardest)")
    args = parser.parse_args()
    if args.derive:
        derive_postures()
        return
    if args.guard_falls:
        print_guarded_falls()
        return
    envelope = load_envelope(ENVELOPE_FILE)
    if args.falls:
        print_falls(envelope)
        return
    started = time.perf_counter()
    config = paced(LoweringConfig(), args.pace)
    trials = trial_set(args.quick)
    if args.early:
        trials = [t for t in trials if t.start == "arms_raised" or (t.push and t.push_onset <= 1.0)]
    for seed in args.seed:
        results = []
        for planned in trials:
            trial = dataclasses.replace(planned, push_onset=planned.push_onset * args.pace)
            results.append(run_lowering(trial, envelope, config, seed=seed, control_rate=args.control_rate))
            r = results[-1]
            print(f"  seed {seed} {trial}: {r.peak_impact:.3f} m/s {r.peak_body}, rest {r.time_to_rest:.1f} s, "
                  f"excursion {1000 * r.hard_excursion:.2f} mrad, {r.fallback or 'no fallback'}", flush=True)
        print(f"seed {seed}: ({time.perf_counter() - started:.0f} s wall so far)")
        print_lowering(results)


if __name__ == "__main__":
    main()
