"""Fault detection on the simulated G1: per fault kind, what the detectors raise and how soon; the cost per call.

* The fault matrix (tests/test_detectors_on_sim.py's scenarios, plus a few that take too long for CI):
  the expected kind, its severity and detection delay from the fault's onset (sim time), the first report
  at ERROR or above, and for falls the ground-truth fall time.
* The guard in the loop (tests/test_guard_fault_matrix.py's cases, sim/guarded_sim.py): per fault kind of
  ``sim/inject_fault``, when the expected anomaly was raised, when and into which mode the guard stopped, and
  the peak impact speed.
* Falls again, acting on the detection the way the supervisor would: nothing (the detectors only
  watch), DAMPING at the first fall_under_way, POWER_OFF at the first fall_under_way. Peak impact speed
  of each (the simulator's own figure).
* Cost per call of each detector entry point, replaying recorded sensor streams (nominal standing with
  arm motion, and a trip where every detector is busy): median, p99 and max in µs on this machine.

Run: ``PYTHONPATH=src python bench/fault_detection.py [matrix] [guard] [falls] [costs]`` (default all four; or against
the installed package).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.safety.anomaly_detectors import AnomalyDetectors, AnomalyReport
from test_detectors_on_sim import (
    ENVELOPE,
    SCENARIOS,
    Outcome,
    Scenario,
    SimFeed,
    make_feed,
    run_scenario,
)

DISTRO = os.environ.get("FTROBOT_ROS_DISTRO") or os.environ.get("ROS_DISTRO") or "unknown"
FALLS = ("push 80 N, 0.2 s: the fall", "trip forward", "trip left")
EXTRA = (
    Scenario("message_delay battery 6 s", "message_delay", {"topic": "battery", "delay": 6.0}, 0.0, "input_late",
             "battery", 8.5, 8.0),
    Scenario("encoder_noise 0.02 rad, all joints (stays quiet)", "encoder_noise", {"joint": "all", "stddev": 0.02},
             0.0, "encoder_noise", None, 3.0, 3.0),
    Scenario("overheat 20 °C/s: the limit", "overheat", {"joint": "left_knee_joint", "rate": 20.0}, 0.0,
             "actuator_temperature", "left_knee_joint", 5.0, 5.0),
)


def figure(name: str, value: float, unit: str, n: int, **extra: Any) -> str:
    return json.dumps({"bench": "fault_detection", "figure": name, "value": round(value, 6), "unit": unit, "n": n,
                       "distro": DISTRO, **extra})


def matrix() -> list[str]:
    lines = []
    print("delays from the fault's onset, sim time; 'fell at': ground truth (pelvis below 0.4 m or torso past 1 rad)")
    print(f"{'fault':48s} {'expected kind':22s} {'severity':8s} {'delay s':>8s}   {'first stop (ERROR+)':30s} "
          f"{'fell at s':>9s}")
    for scenario in (*SCENARIOS, *EXTRA):
        outcome = run_scenario(scenario)
        detected, stop = outcome.detected, outcome.first_stop
        recorder = outcome.feed.sim.recorder
        fell = recorder.first_fall_time - outcome.onset if recorder.first_fall_time is not None else math.nan
        stop_text = f"{stop.kind} {stop.severity.name} {stop.time - outcome.onset:.3f}" if stop else "-"
        severity = detected.severity.name if detected else "MISSED"
        print(f"{scenario.name:48s} {scenario.expect:22s} {severity:8s} {outcome.delay:8.3f}   {stop_text:30s} "
              f"{fell:9.3f}")
        slug = scenario.name.split(":")[0].replace(" ", "_").replace("/", "_").replace(",", "")
        lines.append(figure(f"delay_{slug}_{scenario.expect}_s", outcome.delay, "s", 1, detected=detected is not None))
    return lines


def guard_matrix() -> list[str]:
    """tests/test_guard_fault_matrix.py's cases through the guard itself (sim/guarded_sim.py: detectors,
    supervisor and the hardware's own watchdog in the loop): per fault, when the expected anomaly was raised,
    when the guard stopped and in which mode, and the peak impact speed."""
    from ftrobot_guard.safety.dev_envelope import always_open
    from ftrobot_guard.safety.envelope import parse_envelope
    from test_guard_fault_matrix import CASES, run_case
    from test_guard_fault_matrix import ENVELOPE as ENVELOPE_FILE

    envelope = parse_envelope(always_open(ENVELOPE_FILE.read_text(encoding="utf-8")).encode("utf-8"))
    lines = []
    print("\nthe guard in the loop (tests/test_guard_fault_matrix.py's cases; delays from the fault's onset, sim time):")
    print(f"{'fault':44s} {'expected anomaly':22s} {'raised s':>8s}   {'mode':10s} {'stopped s':>9s} {'peak m/s':>8s}")
    for case in CASES:
        loop, onset = run_case(envelope, case)
        raised = [t for t, a in loop.record.raised(case.anomaly or None) if t >= onset and a.detector != "gate"]
        delay = raised[0] - onset if raised and case.anomaly else math.nan
        stops = [t for t, state in loop.record.states if t >= onset and state.mode.latched]
        stopped = stops[0] - onset if stops else math.nan
        peak = loop.sim.peak_impact.speed if loop.sim.peak_impact is not None else 0.0
        name = f"{case.kind} {' '.join(f'{k}={v}' for k, v in case.parameters.items())}"[:44]
        print(f"{name:44s} {case.anomaly or '(none)':22s} {delay:8.3f}   {loop.core.output.mode.name:10s} "
              f"{stopped:9.3f} {peak:8.2f}")
        slug = name.replace(" ", "_").replace("/", "_").replace("=", "_").replace(",", "")
        lines.append(figure(f"guard_{slug}_raised_s", delay, "s", 1, anomaly=case.anomaly,
                            mode=loop.core.output.mode.name, stopped_s=round(stopped, 6), peak_impact=round(peak, 3)))
    return lines


def act(mode: ActuationMode) -> Callable[[SimFeed, AnomalyReport], None]:
    def on_detection(feed: SimFeed, report: AnomalyReport) -> None:
        feed.arm_motion = False
        feed.sim.set_actuation_mode(mode, reason=f"{report.kind} detected")
    return on_detection


def falls() -> list[str]:
    lines = []
    print("\nfalls, acting at the first fall_under_way (peak impact speed, the simulator's figure):")
    print(f"{'fault':34s} {'detected s':>10s} {'fell at s':>9s} {'none':>7s} {'DAMPING':>8s} {'POWER_OFF':>9s}")
    for name in FALLS:
        scenario = replace(next(s for s in SCENARIOS if s.name == name), run=3.0)
        impacts = {}
        detected = fell = math.nan
        for label, response in (("none", None), ("damping", act(ActuationMode.DAMPING)),
                                ("power_off", act(ActuationMode.POWER_OFF))):
            outcome: Outcome = run_scenario(scenario, on_detection=response)
            recorder = outcome.feed.sim.recorder
            impacts[label] = recorder.peak_impact_speed
            if label == "none":
                detected = outcome.delay
                fell = recorder.first_fall_time - outcome.onset if recorder.first_fall_time is not None else math.nan
        print(f"{name:34s} {detected:10.3f} {fell:9.3f} {impacts['none']:7.2f} {impacts['damping']:8.2f} "
              f"{impacts['power_off']:9.2f}")
        slug = name.split(":")[0].replace(" ", "_").replace(",", "")
        for label, value in impacts.items():
            lines.append(figure(f"peak_impact_{slug}_{label}_mps", value, "m/s", 1))
    return lines


class _Recording:
    """Stands in for AnomalyDetectors in a SimFeed and keeps every call for replay."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., list[AnomalyReport]]:
        def record(*args: Any, **kwargs: Any) -> list[AnomalyReport]:
            self.calls.append((name, args, kwargs))
            return []
        return record


def record_stream(seconds: float, fault: tuple[str, dict[str, Any]] | None = None) -> list[tuple[str, Any, Any]]:
    feed = make_feed(settle=0.0)
    recording = _Recording()
    feed.detectors = recording  # type: ignore[assignment]
    if fault is not None:
        feed.sim.inject_fault(fault[0], 0.5, 0.2, fault[1])
    feed.run_for(seconds)
    return recording.calls


def _overhead(clock: Callable[[], int]) -> float:
    samples = []
    for _ in range(2000):
        begin = clock()
        samples.append(clock() - begin)
    return statistics.median(samples) / 1000.0


def _numpy_reference() -> float:
    import numpy as np

    a, b, out = np.ones(29), np.ones(29), np.zeros(29)
    samples = []
    for _ in range(200):
        begin = time.thread_time_ns()
        for _ in range(100):
            np.add(a, b, out=out)
        samples.append((time.thread_time_ns() - begin) / 100_000.0)
    return statistics.median(samples)


def replay(calls: list[tuple[str, Any, Any]], start: float) -> dict[str, tuple[list[float], list[float]]]:
    """Per entry point: wall and CPU (this thread) µs of each call, timer overhead subtracted."""
    detectors = AnomalyDetectors(ENVELOPE, now=start)
    timings: dict[str, tuple[list[float], list[float]]] = {}
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    wall_overhead, cpu_overhead = _overhead(wall), _overhead(cpu)
    for name, args, kwargs in calls:
        method = getattr(detectors, name)
        w0 = wall()
        c0 = cpu()
        method(*args, **kwargs)
        c1 = cpu()
        w1 = wall()
        walls, cpus = timings.setdefault(name, ([], []))
        walls.append((w1 - w0) / 1000.0 - wall_overhead - cpu_overhead)
        cpus.append((c1 - c0) / 1000.0 - cpu_overhead)
    return timings


def costs() -> list[str]:
    lines = []
    print(f"\nload average before the cost runs: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
          "(CPU time is this thread's own; wall time includes waiting for a core)")
    reference = _numpy_reference()
    print(f"reference on this machine now: one numpy ufunc on 29 floats takes {reference:.2f} µs of CPU (median); "
          "the costs below scale with it")
    lines.append(figure("reference_numpy_ufunc_29_cpu_us", reference, "us", 20000))
    streams = {"nominal": record_stream(10.0), "trip": record_stream(3.0, ("trip", {}))}
    for label, calls in streams.items():
        timings = replay(calls, start=0.0)
        print(f"\ncost per call, {label} stream ({sum(len(w) for w, _ in timings.values())} calls), µs:")
        print(f"{'entry point':20s} {'calls':>7s} {'wall p50':>9s} {'cpu p50':>8s} {'cpu p99':>8s} {'cpu max':>8s}")
        for name, (walls, cpus) in sorted(timings.items()):
            cpus_sorted = sorted(cpus)
            p99 = cpus_sorted[min(len(cpus) - 1, int(0.99 * len(cpus)))]
            print(f"{name:20s} {len(cpus):7d} {statistics.median(walls):9.1f} {statistics.median(cpus):8.1f} "
                  f"{p99:8.1f} {cpus_sorted[-1]:8.1f}")
            lines.append(figure(f"cost_{label}_{name}_cpu_median_us", statistics.median(cpus), "us", len(cpus)))
            lines.append(figure(f"cost_{label}_{name}_cpu_p99_us", p99, "us", len(cpus)))
            lines.append(figure(f"cost_{label}_{name}_wall_median_us", statistics.median(walls), "us", len(walls)))
        per_step = sum(statistics.mean(c) * len(c) for _, c in timings.values()) / len(timings["check"][1])
        print(f"all detector work per 2 ms control step (CPU): {per_step:.1f} µs ({per_step / 2000 * 100:.1f} % of a "
              "core at 500 Hz)")
        lines.append(figure(f"cost_{label}_per_control_step_cpu_us", per_step, "us", len(timings["check"][1])))
    return lines


def main() -> None:
    started = time.perf_counter()
    parts = set(sys.argv[1:]) or {"matrix", "guard", "falls", "costs"}   # any of them, e.g. `costs` alone
    lines = matrix() if "matrix" in parts else []
    lines += guard_matrix() if "guard" in parts else []
    lines += falls() if "falls" in parts else []
    lines += costs() if "costs" in parts else []
    print(f"\n(bench took {time.perf_counter() - started:.0f} s)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
