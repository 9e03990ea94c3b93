"""Signed guardian commands: ESTOP → actuation request through the real guard on DDS, and what checking a
signed command costs (issue 9).

**Part 1, across processes** (loopback DDS, a domain of its own): the real guard, ``ftrobot up guard --params
FILE --namespace NS`` in a child process, with a development department's credentials as on a robot (robot key
and certificate, a signed envelope, ``state_directory``, ``guardian_certificates_dir`` holding an operator and an
officer, the operator on duty). This process plays the rest of the robot: bench/estop_latency.py's fake hardware
(:class:`~estop_latency.FakeHardware`: the G1's sensor topics at their rates, so the guard leaves BOOT and every
ESTOP is a real NORMAL → ESTOP transition, and ``hw/set_actuation_mode``, answering every request with success
and the mode asked for) and a guardian console (:class:`~bench_guard.GuardianConsole`: a node publishing
``ftrobot_msgs/GuardianCommand`` on ``guardian/command``, QoS ``GUARDIAN_COMMANDS``, and ``std_msgs/Bool`` on
``estop``). The guard's files, its process, the console and the recovery after a trial are bench/bench_guard.py's,
shared with bench/estop_latency.py.

A trial starts only while the guard is NORMAL and the hardware was last asked for NORMAL, after a random settle
of 10–30 ms (decorrelated from the guard's control timer). The console signs a fresh ESTOP (action 1, a new
nonce, issued now; the signing is not timed: the guardian's tool does it), reads ``t0 = perf_counter_ns()``
(CLOCK_MONOTONIC) and publishes it; the hardware's service callback records the arrival of the first request for
a mode other than NORMAL after ``t0`` (HOLD: ESTOP holds at once). latency = arrival − t0, both read in this
process. The guard obeys a stop before it authenticates it (safety/guardian_desk.py), so the figure is the stop
path; the time until the guard's verdict on that ESTOP arrives on ``guardian/result`` (after the signature check
and the fsynced nonce) is reported beside it. With the baseline (default), every signed trial is paired with an
unsigned ``estop`` (std_msgs/Bool true) trial through the same guard, alternating which goes first, so both
figures are taken under the same load.

After each trial the console acknowledges the incident the stop opened (a signed ACKNOWLEDGE by the officer
through ``incidents/acknowledge``: unacknowledged incidents are re-published every 5 s and would pile up over
thousands of trials), then sends a signed RESET (action 7) and waits for its verdict, ``safety_state`` NORMAL
(QoS LATCHED) and the NORMAL request at the hardware. A RESET refused while a stopping anomaly is still active is
repeated; a stop nobody asked for (a detector's, seen before a trial) is recorded, acknowledged and RESET, and
the trial is run again.

**Part 2, in this process, no ROS**: :meth:`GuardianCommandVerifier.check` as the guard builds it (department CA,
the guardian registry directory, default role policy, empty revocation list, replay memory horizon 4 × max skew),
timed call by call (perf_counter_ns), on ESTOPs signed just before (batches of 500, issued now):

* valid commands with fresh nonces, in-memory replay memory (``ReplayMemory(None, ...)``); the median of the
  first and last tenth shows what a fuller replay memory adds;
* valid commands, file-backed replay memory in a temporary directory (one append + fsync per accepted command);
* forged commands (signed by a key that is not the guardian's): refused FORGED, no nonce remembered;
* replayed commands (accepted ones checked again): refused REPLAYED;
* ``message_fields()`` of a ``GuardianCommand`` message (what the guard does before every check), and
  ``sign_command()`` (the guardian's side).

Prints p50/p90/p99/max (µs) for part 1, commands/s (count / Σ check time) and the median µs per check for part 2,
the load average before and after, then one JSON object per figure (as bench/heartbeat_verify.py).

    python bench/guardian_commands.py [--trials 10000] [--no-baseline] [--checks 5000] [--file-checks 1000]
                                      [--json out.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import rclpy
from bench_guard import (
    MAX_SKEW_S,
    OPERATOR_ID,
    GuardianConsole,
    guard_warnings,
    load_ed25519,
    make_bench_files,
    start_guard,
    wait_started,
)
from bench_guard import recover as recover_guard
from cryptography.hazmat.primitives.asymmetric import ed25519
from estop_latency import (
    GIL_SWITCH_INTERVAL_S,
    FakeHardware,
    Spinner,
    load_average,
    percentile,
    standing_posture,
)
from ftrobot_msgs.msg import GuardianCommand
from rclpy.context import Context
from std_msgs.msg import Bool

from ftrobot_guard.guardians.command_authentication import GuardianCommandVerifier, Refusal
from ftrobot_guard.guardians.guardian_commands import GuardianAction, command_fields, sign_command
from ftrobot_guard.guardians.guardian_registry import GuardianRegistry
from ftrobot_guard.guardians.replay_memory import ReplayMemory
from ftrobot_guard.guardians.revocation_list import RevocationList
from ftrobot_guard.guardians.role_policy import DEFAULT_ROLE_POLICY
from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.ros.stack_runner import log_tail, stop_processes
from ftrobot_guard.trust.certificates import CertificateVerifier
from ftrobot_guard.trust.dev_credentials import make_department, make_guardian
from ftrobot_guard.trust.identity import make_identity_number
from ftrobot_guard.trust.signed_fields import message_fields

TRIAL_TIMEOUT_S = 2.0
BATCH = 500                     # part 2: commands signed (untimed) just before they are checked


# ---------------------------------------------------------------------------------------------- setup


def command_message(fields: dict[str, Any], signature: bytes) -> GuardianCommand:
    """The ftrobot_msgs/GuardianCommand of signed ``fields`` (as tests/test_guardians_on_dds.py builds it)."""
    msg = GuardianCommand(guardian_id=fields["guardian_id"], robot_id=fields["robot_id"], action=fields["action"],
                          argument=fields["argument"], reason=fields["reason"])
    msg.issued_at.sec, msg.issued_at.nanosec = fields["issued_at"]["sec"], fields["issued_at"]["nanosec"]
    msg.nonce = bytes(fields["nonce"])
    msg.signature = signature
    return msg


def summary(values_us: Sequence[float]) -> dict[str, float]:
    values = sorted(values_us)
    return {"count": len(values), "p50_us": percentile(values, 0.50), "p90_us": percentile(values, 0.90),
            "p99_us": percentile(values, 0.99), "max_us": values[-1] if values else math.nan,
            "mean_us": statistics.fmean(values) if values else math.nan}


# ---------------------------------------------------------------------------------------------- part 1: trials


@dataclass
class TrialRecord:
    signed_us: list[float]
    bool_us: list[float]
    verdict_us: list[float]
    verdicts: dict[str, int]
    modes: dict[str, int]
    problems: list[str]
    missed: dict[str, int]
    resets: int = 0
    repeated_resets: int = 0


def recover(console: GuardianConsole, hardware: FakeHardware, record: TrialRecord, log_path: Path) -> None:
    """Acknowledge open incidents, then signed RESETs until the guard is NORMAL and the hardware asked for NORMAL
    (bench_guard.recover), counted in ``record``."""
    outcome = recover_guard(console, hardware, log_path)
    record.problems.extend(outcome.problems)
    record.resets += outcome.resets
    record.repeated_resets += outcome.resets - 1
    if outcome.resets > 1:
        record.problems.append(f"{outcome.resets} RESETs to return to NORMAL; the first answered: "
                               f"{outcome.first_answer}")


def one_trial(kind: str, console: GuardianConsole, hardware: FakeHardware, record: TrialRecord, log_path: Path) -> None:
    time.sleep(random.uniform(0.010, 0.030))
    while console.mode() != "NORMAL" or hardware.mode != ActuationMode.NORMAL:
        cause = console.state.cause if console.state is not None else ""
        record.problems.append(f"before a {kind} trial: a stop nobody asked for: {console.mode()} ({cause})")
        recover(console, hardware, record, log_path)
        time.sleep(random.uniform(0.010, 0.030))
    msg = console.signed(GuardianAction.ESTOP, "bench: e-stop trial") if kind == "signed" else None
    if msg is not None:
        t0 = hardware.arm()
        console.commands.publish(msg)
    else:
        t0 = hardware.arm()
        console.estop.publish(Bool(data=True))
    if hardware.hit_event.wait(TRIAL_TIMEOUT_S) and hardware.hit is not None:
        arrived, mode = hardware.hit
        (record.signed_us if msg is not None else record.bool_us).append((arrived - t0) / 1000.0)
        name = f"{kind} {ActuationMode(mode).name}"
        record.modes[name] = record.modes.get(name, 0) + 1
    else:
        hardware.armed_after = None
        record.missed[kind] = record.missed.get(kind, 0) + 1
        record.problems.append(f"{kind} ESTOP: no request at the hardware within {TRIAL_TIMEOUT_S:g} s (mode "
                               f"{console.mode()})\n{log_tail(log_path)}")
    if msg is not None:
        result = console.result_of(msg, TRIAL_TIMEOUT_S)
        if result is None:
            verdict = "no verdict"
        else:
            verdict = "accepted" if result.accepted else f"refused {result.refusal}"
            verdict += ", obeyed" if result.obeyed else ", not obeyed"
            record.verdict_us.append((console.results[bytes(msg.nonce)][0] - t0) / 1000.0)
        record.verdicts[verdict] = record.verdicts.get(verdict, 0) + 1
    if not console.wait_for(lambda: console.mode() == "ESTOP" and bool(console.open_incidents), TRIAL_TIMEOUT_S):
        record.problems.append(f"{kind} ESTOP: mode {console.mode()}, {len(console.open_incidents)} open incident(s) "
                               f"{TRIAL_TIMEOUT_S:g} s after")
    recover(console, hardware, record, log_path)


def _progress(done: int, record: TrialRecord, started: float) -> None:
    signed, plain = sorted(record.signed_us), sorted(record.bool_us)
    line = (f"  {done:6d} trials, {time.monotonic() - started:6.1f} s: signed p50 {percentile(signed, 0.5):6.0f} µs, "
            f"p99 {percentile(signed, 0.99):6.0f} µs")
    if plain:
        line += f"; estop p50 {percentile(plain, 0.5):6.0f} µs, p99 {percentile(plain, 0.99):6.0f} µs"
    print(line, flush=True)


def dds_trials(trials: int, baseline: bool, domain: int, keep: Path | None) -> dict[str, Any]:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    names, positions = standing_posture()
    started = time.monotonic()
    result: dict[str, Any] = {"load_before": load_average()}
    record = TrialRecord([], [], [], {}, {}, [], {})
    with tempfile.TemporaryDirectory(prefix="ftrobot-guardian-") as tmp:
        directory = keep or Path(tmp)
        files = make_bench_files(directory)
        namespace = f"/guardian_{uuid.uuid4().hex[:6]}"
        context = Context()
        rclpy.init(context=context, domain_id=domain)
        hardware = FakeHardware(context, namespace, names, positions)
        console = GuardianConsole(context, namespace, files)
        hardware.start(context)
        console_spin = Spinner(context, console.node, "bench_guardian_console")
        log_path = directory / "guard.log"
        guard = start_guard(files, namespace, domain, log_path)
        try:
            wait_started(console, hardware, guard, log_path)
            print(f"guard NORMAL after {time.monotonic() - started:.1f} s; {trials} trials"
                  f"{' (each paired with an unsigned estop)' if baseline else ''} (load {result['load_before']})",
                  flush=True)
            trials_started = time.monotonic()
            for trial in range(trials):
                if guard.poll() is not None:
                    raise RuntimeError(f"the guard process ended ({guard.returncode}):\n{log_tail(log_path)}")
                kinds = ("signed", "bool") if baseline else ("signed",)
                for kind in kinds if trial % 2 == 0 else tuple(reversed(kinds)):
                    one_trial(kind, console, hardware, record, log_path)
                if (trial + 1) % 1000 == 0 or trial + 1 == trials:
                    _progress(trial + 1, record, trials_started)
            result["seconds"] = time.monotonic() - trials_started
            for error in (hardware.error, console_spin.error):
                if error is not None:
                    raise error
        finally:
            stop_processes(guard)
            console_spin.stop()
            hardware.stop()
            console.node.destroy_node()
            rclpy.shutdown(context=context)
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
    result.update(
        trials=trials, signed=summary(record.signed_us), verdict=summary(record.verdict_us),
        verdicts=record.verdicts, modes_requested=record.modes, missed=record.missed, resets=record.resets,
        repeated_resets=record.repeated_resets, problems=record.problems, load_after=load_average(),
        sensor_overruns=hardware.sensor_overruns,
        guard_warnings=guard_warnings(log_text))
    if baseline:
        result["bool"] = summary(record.bool_us)
    return result


# ---------------------------------------------------------------------------------------------- part 2: checks


def timed_us(call: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1000.0


def check_figure(times_us: Sequence[float], verdicts: dict[str, int]) -> dict[str, Any]:
    values = sorted(times_us)
    total = sum(values)
    return {"count": len(values), "median_us": percentile(values, 0.5), "p99_us": percentile(values, 0.99),
            "max_us": values[-1] if values else math.nan,
            "commands_per_s": len(values) / (total * 1e-6) if total > 0 else math.nan, "verdicts": verdicts}


def verification_figures(checks: int, file_checks: int, directory: Path) -> dict[str, Any]:
    """GuardianCommandVerifier.check() as the guard builds it, and message_fields() of a GuardianCommand."""
    department = make_department(directory / "department")
    registry_dir = directory / "guardians"
    operator = make_guardian(directory / "keys", registry_dir, department, OPERATOR_ID, "Bench Operator", "operator")
    key = load_ed25519(operator.private_key)
    forger = ed25519.Ed25519PrivateKey.generate()
    robot = str(make_identity_number("440304", 2026, 123))
    registry = GuardianRegistry(registry_dir)
    trust = CertificateVerifier([department.cert])
    horizon = 4.0 * MAX_SKEW_S   # as the guard node

    def verifier(memory: ReplayMemory) -> GuardianCommandVerifier:
        return GuardianCommandVerifier(trust, registry, robot, DEFAULT_ROLE_POLICY, RevocationList.empty(), memory,
                                       MAX_SKEW_S)

    def batch(count: int, signer: ed25519.Ed25519PrivateKey) -> list[tuple[dict[str, Any], bytes]]:
        now = dt.datetime.now(dt.UTC)
        out = []
        for _ in range(count):
            fields = command_fields(OPERATOR_ID, robot, GuardianAction.ESTOP, "", "bench: verification", now)
            out.append((fields, sign_command(signer, fields)))
        return out

    def run(target: GuardianCommandVerifier, count: int, signer: ed25519.Ed25519PrivateKey,
            kept: list[tuple[dict[str, Any], bytes]] | None = None,
            given: list[tuple[dict[str, Any], bytes]] | None = None) -> tuple[list[float], dict[str, int]]:
        times: list[float] = []
        verdicts: dict[str, int] = {}
        done = 0
        while done < count:
            commands = given[done:done + BATCH] if given is not None else batch(min(BATCH, count - done), signer)
            for fields, signature in commands:
                wall = dt.datetime.now(dt.UTC)
                now = time.monotonic()
                start = time.perf_counter_ns()
                verdict = target.check(fields, signature, now, wall)
                times.append((time.perf_counter_ns() - start) / 1000.0)
                name = "accepted" if verdict.accepted else (verdict.refusal or Refusal.MALFORMED).name
                verdicts[name] = verdicts.get(name, 0) + 1
                if kept is not None and verdict.accepted:
                    kept.append((fields, signature))
            done += len(commands)
        return times, verdicts

    result: dict[str, Any] = {}
    warm = verifier(ReplayMemory(None, horizon))
    run(warm, 200, key)   # certificate chain verified and cached, code paths warm
    accepted: list[tuple[dict[str, Any], bytes]] = []
    memory = ReplayMemory(None, horizon)
    times, verdicts = run(verifier(memory), checks, key, kept=accepted)
    figure = check_figure(times, verdicts)
    tenth = max(1, len(times) // 10)
    figure.update(first_tenth_median_us=statistics.median(times[:tenth]),
                  last_tenth_median_us=statistics.median(times[-tenth:]), nonces_remembered_at_end=len(memory))
    result["valid_in_memory"] = figure
    replayed_times, replayed_verdicts = run(verifier(memory), len(accepted), key, given=accepted)
    result["replayed"] = check_figure(replayed_times, replayed_verdicts)
    forged_times, forged_verdicts = run(verifier(ReplayMemory(None, horizon)), checks, forger)
    result["forged"] = check_figure(forged_times, forged_verdicts)
    if file_checks > 0:
        state = directory / "state"
        state.mkdir(mode=0o700)
        file_memory = ReplayMemory(state / "guardian_nonces", horizon)
        file_times, file_verdicts = run(verifier(file_memory), file_checks, key)
        result["valid_file_backed"] = check_figure(file_times, file_verdicts)
        result["valid_file_backed"]["directory"] = str(state)
    fields = command_fields(OPERATOR_ID, robot, GuardianAction.ESTOP, "", "bench: verification",
                            dt.datetime.now(dt.UTC))
    message = command_message(fields, sign_command(key, fields))
    if message_fields(message) != fields:
        raise RuntimeError("message_fields() of the message differs from the signed fields")
    for _ in range(200):
        message_fields(message)
    field_times = [timed_us(lambda: message_fields(message)) for _ in range(max(checks, 1000))]
    result["message_fields"] = check_figure(field_times, {})
    sign_times = [timed_us(lambda: sign_command(key, fields)) for _ in range(max(checks // 5, 500))]
    result["sign_command"] = check_figure(sign_times, {})
    return result


# ---------------------------------------------------------------------------------------------- output


def _print_latency(label: str, figure: dict[str, Any], trials: int) -> None:
    print(f"  {label}: p50 {figure['p50_us']:.0f} µs, p90 {figure['p90_us']:.0f} µs, p99 {figure['p99_us']:.0f} µs, "
          f"max {figure['max_us']:.0f} µs, mean {figure['mean_us']:.0f} µs ({figure['count']}/{trials} trials)")


def _print_check(label: str, figure: dict[str, Any]) -> None:
    verdicts = f"; verdicts {figure['verdicts']}" if figure["verdicts"] else ""
    print(f"  {label:44s} {figure['commands_per_s']:9.0f} /s, median {figure['median_us']:7.1f} µs, "
          f"p99 {figure['p99_us']:7.1f} µs, max {figure['max_us']:8.1f} µs ({figure['count']} calls{verdicts})")


def print_dds(result: dict[str, Any]) -> None:
    trials = result["trials"]
    print(f"guardian ESTOP -> actuation request at the hardware side (modes requested: {result['modes_requested']})")
    _print_latency("signed GuardianCommand ESTOP", result["signed"], trials)
    if "bool" in result:
        _print_latency("unsigned std_msgs/Bool estop (baseline)", result["bool"], trials)
        print(f"  signed - unsigned: p50 {result['signed']['p50_us'] - result['bool']['p50_us']:+.0f} µs, "
              f"p99 {result['signed']['p99_us'] - result['bool']['p99_us']:+.0f} µs")
    _print_latency("signed ESTOP -> its verdict on guardian/result", result["verdict"], trials)
    print(f"  verdicts on the signed ESTOPs: {result['verdicts']}")
    print(f"  load before {result['load_before']}; after {result['load_after']}; trials took {result['seconds']:.0f} s")
    print(f"  e-stops without a request: {result['missed'] or 0}; RESETs {result['resets']} (repeated "
          f"{result['repeated_resets']}); sensor schedule restarts (this process not scheduled for > 50 ms): "
          f"{result['sensor_overruns']}")
    for label in ("problems", "guard_warnings"):
        items = result[label]
        if items:
            print(f"  {label.replace('_', ' ')}: {len(items)}")
            for item in items[:10]:
                print(f"    {item}")


def print_checks(result: dict[str, Any]) -> None:
    print("GuardianCommandVerifier.check() in this process (no ROS):")
    valid = result["valid_in_memory"]
    _print_check("valid, fresh nonces, in-memory replay memory", valid)
    print(f"    median of the first tenth {valid['first_tenth_median_us']:.1f} µs, of the last tenth "
          f"{valid['last_tenth_median_us']:.1f} µs ({valid['nonces_remembered_at_end']} nonces remembered at the end)")
    if "valid_file_backed" in result:
        _print_check("valid, file-backed replay memory (fsync)", result["valid_file_backed"])
        print(f"    in {result['valid_file_backed']['directory']}")
    _print_check("forged (another key's signature)", result["forged"])
    _print_check("replayed (accepted nonces again)", result["replayed"])
    _print_check("message_fields(GuardianCommand)", result["message_fields"])
    _print_check("sign_command (the guardian's side)", result["sign_command"])


def print_json(result: dict[str, Any]) -> None:
    distro = os.environ.get("FTROBOT_ROS_DISTRO", os.environ.get("ROS_DISTRO", "none"))
    rows: list[tuple[str, float, str, int]] = []
    dds = result.get("dds")
    if dds is not None:
        for kind in ("signed", "bool", "verdict"):
            if kind in dds:
                for stat in ("p50_us", "p90_us", "p99_us", "max_us"):
                    rows.append((f"{kind}_estop_{stat}", dds[kind][stat], "us", dds[kind]["count"]))
    checks = result.get("checks")
    if checks is not None:
        for case, figure in checks.items():
            rows.append((f"{case}_median_us", figure["median_us"], "us", figure["count"]))
            rows.append((f"{case}_per_s", figure["commands_per_s"], "1/s", figure["count"]))
    for figure_name, value, unit, count in rows:
        print(json.dumps({"bench": "guardian_commands", "figure": figure_name, "value": round(value, 2),
                          "unit": unit, "n": count, "distro": distro}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10000,
                        help="signed ESTOP trials through the guard on DDS (0: skip part 1)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="no unsigned std_msgs/Bool estop trial paired with each signed one")
    parser.add_argument("--checks", type=int, default=5000,
                        help="verifier checks per in-memory case, in this process (0: skip part 2)")
    parser.add_argument("--file-checks", type=int, default=1000,
                        help="verifier checks with the file-backed replay memory (fsync each; 0: skip)")
    parser.add_argument("--domain", type=int, default=120 + os.getpid() % 80)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="keep the bench's files and the guard's log in this (new) directory")
    args = parser.parse_args()
    if args.trials < 0 or args.checks < 0 or args.file_checks < 0:
        parser.error("--trials, --checks and --file-checks must not be negative")
    result: dict[str, Any] = {}
    ok = True
    if args.checks > 0:
        with tempfile.TemporaryDirectory(prefix="ftrobot-guardian-checks-") as tmp:
            result["checks"] = verification_figures(args.checks, args.file_checks,
                                                    (args.keep / "checks") if args.keep else Path(tmp))
        print_checks(result["checks"])
        expected = {"valid_in_memory": "accepted", "valid_file_backed": "accepted", "forged": Refusal.FORGED.name,
                    "replayed": Refusal.REPLAYED.name}
        for case, verdict in expected.items():
            figure = result["checks"].get(case)
            if figure is not None and set(figure["verdicts"]) != {verdict}:
                print(f"  unexpected verdicts for {case}: {figure['verdicts']} (expected only {verdict})")
                ok = False
    if args.trials > 0:
        result["dds"] = dds_trials(args.trials, not args.no_baseline, args.domain,
                                   (args.keep / "dds") if args.keep else None)
        print_dds(result["dds"])
        dds = result["dds"]
        ok = ok and not dds["missed"] and not dds["problems"] and set(dds["verdicts"]) == {"accepted, obeyed"}
    print_json(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
