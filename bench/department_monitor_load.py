"""Department monitor load and heartbeat-loss detection delay (issue 2's figures).

1. Load: one generator process publishes N robots' signed heartbeats at 1 Hz (each robot with its
   own key and department certificate, each heartbeat carrying a black-box checkpoint that changes
   every 2 s as the recorder's does) on /fleet/heartbeat, or spread over ``--topics`` topics. The
   monitor runs in its own process (the real DepartmentMonitorNode, real DDS on loopback) and
   reports how many robots it verified and the CPU it used over the measurement window (target:
   1000 robots under 25 % of one core). Beside it, over the same window and traffic, a take-only
   process (the same batched intake, a handler that does nothing) gives the DDS take's share; the
   monitor process then times one Ed25519 verification and one read of a heartbeat (typed fields +
   canonical bytes). The breakdown printed: take, verify, read, and the rest (fleet logic, alerts,
   diagnostics, timers). ``--profile DIR`` writes the monitor's cProfile statistics there.
2. Loss delay: a real heartbeat node at 1 Hz is stopped; time from its last heartbeat to the
   monitor's SILENT alert (expected: silent_periods x period, plus up to one watchdog tick).

CPU shares are process CPU time over wall time: run it on a quiet machine (check ``uptime``).

3. Size limit: for heartbeats of 64 kB to 4 MB (serialized), how many of ``--size-attempts`` the
   monitor in another process hears, from a best-effort publisher and from a reliable one (real DDS).

Usage: python bench/department_monitor_load.py [--robots 1000] [--topics 1] [--seconds 20] [--trials 5]
       [--size-attempts 10] [--no-robots-figure] [--profile DIR]
Prints human-readable lines, then one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
DISTRO = os.environ.get("FTROBOT_ROS_DISTRO", "jazzy")
WARMUP_S = 8.0
CHECKPOINT_EVERY_S = 2  # the recorder's default checkpoint_every_s


def _make_fleet(directory: Path, robots: int) -> None:
    from ftrobot_guard.trust.dev_credentials import make_department, make_robot
    from ftrobot_guard.trust.identity import make_identity_number

    department = make_department(directory / "department")
    for serial in range(1, robots + 1):
        number = make_identity_number("440304", 2026, serial)
        make_robot(directory / f"r{serial}", department, number, f"robot-{serial}")


def _topic(index: int, topics: int) -> str:
    return "/fleet/heartbeat" if topics == 1 else f"/fleet/r{index % topics + 1}/heartbeat"


class _Robot:
    """One robot of the generated fleet: its key, certificate DER, identity number and name."""

    def __init__(self, directory: Path, serial: int) -> None:
        from cryptography.x509.oid import NameOID

        from ftrobot_guard.trust.certificates import certificate_der, load_certificate
        from ftrobot_guard.trust.keys import load_private_key

        folder = directory / f"r{serial}"
        cert = load_certificate(folder / "robot.pem")
        self.key = load_private_key(folder / "robot.key")
        self.public_key = cert.public_key()
        self.der = certificate_der(cert)
        self.number = str(cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value)
        self.name = f"robot-{serial}"

    def heartbeat(self, boot: str, segment: str, sequence: int, uptime: float, stamp: Any) -> Any:
        """A signed heartbeat as the robot's heartbeat node sends it, with the recorder's latest checkpoint."""
        import hashlib

        from ftrobot_msgs.msg import Heartbeat, TopicHealth

        from ftrobot_guard.trust.signed_fields import HEARTBEAT_DOMAIN, message_fields, sign_fields

        checkpoint = (sequence + 1) // CHECKPOINT_EVERY_S
        msg = Heartbeat(format_version=1, identity_number=self.number, robot_name=self.name,
                        department="Futian District Government Services Center", boot_id=boot,
                        sequence=sequence, uptime=uptime, safety_mode=1, safety_mode_name="NORMAL",
                        software_digest="0" * 64, config_digest="0" * 64, guardian_on_duty="G-1", certificate=self.der,
                        log_checkpoint_sequence=checkpoint * 100, log_segment_id=segment,
                        log_chain_head=hashlib.sha256(f"{self.number}/{checkpoint}".encode()).hexdigest(),
                        log_checkpoint_signature=bytes(64))
        msg.watched_topics = [TopicHealth(topic=f"/{self.name}/{t}", ever_received=True, age=0.002, max_age=0.1,
                                          healthy=True) for t in ("joint_states", "imu")]
        msg.header.stamp = stamp
        msg.log_checkpoint_stamp = stamp
        msg.signature = sign_fields(self.key, HEARTBEAT_DOMAIN, message_fields(msg))  # type: ignore[arg-type]
        return msg


def _generator(directory: Path, robots: int, topics: int, seconds: float) -> None:
    import uuid

    import rclpy
    from ftrobot_msgs.msg import Heartbeat

    from ftrobot_guard.ros.qos_profiles import heartbeat_publisher

    rclpy.init()
    node = rclpy.create_node("heartbeat_generator")
    publishers = [node.create_publisher(Heartbeat, _topic(i, topics), heartbeat_publisher(1.0)) for i in range(topics)]
    fleet = [_Robot(directory, serial) for serial in range(1, robots + 1)]
    boot, segment = uuid.uuid4().hex, uuid.uuid4().hex
    start = time.monotonic()
    sequence = 0
    print("generator ready", flush=True)
    while time.monotonic() - start < seconds:
        tick = time.monotonic()
        sequence += 1
        for index, robot in enumerate(fleet):
            # Real robots are not synchronised: spread the fleet's heartbeats over the period.
            delay = tick + index / len(fleet) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            msg = robot.heartbeat(boot, segment, sequence, tick - start, node.get_clock().now().to_msg())
            publishers[index % topics].publish(msg)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    node.destroy_node()
    rclpy.shutdown()


class _CpuAccount:
    """CPU time spent in some functions during the measurement window (per name).

    Counted in the calling thread's CPU time: the process's CPU time would add what DDS threads use
    meanwhile."""

    def __init__(self) -> None:
        self.active = False
        self.seconds: dict[str, float] = {}

    def patch(self, owner: Any, attribute: str, name: str) -> None:
        """Count ``owner.attribute`` (a function, patched on its class before any instance exists) as ``name``."""
        function = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.active:
                return function(*args, **kwargs)
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.thread_time() - start

        setattr(owner, attribute, timed)


ACCOUNT = _CpuAccount()


def _count_garbage_collection() -> None:
    """Account the cyclic garbage collector's CPU time as "gc"."""
    import gc

    started = [0.0]

    def callback(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        elif ACCOUNT.active:
            ACCOUNT.seconds["gc"] = ACCOUNT.seconds.get("gc", 0.0) + time.thread_time() - started[0]

    gc.callbacks.append(callback)


def _spin_window(executor: Any, seconds: float, count: Any) -> tuple[float, float, int]:
    """Spin until the parent says the generator runs (a line on stdin), then warm up, then measure."""
    while not select.select([sys.stdin], [], [], 0.0)[0]:
        executor.spin_once(timeout_sec=0.05)
    sys.stdin.readline()
    end_warmup = time.monotonic() + WARMUP_S
    while time.monotonic() < end_warmup:
        executor.spin_once(timeout_sec=0.05)
    cpu0, wall0, count0 = time.process_time(), time.monotonic(), count()
    ACCOUNT.active = True
    while time.monotonic() - wall0 < seconds:
        executor.spin_once(timeout_sec=0.05)
    ACCOUNT.active = False
    return time.process_time() - cpu0, time.monotonic() - wall0, count() - count0


def _take_only(topics: int, seconds: float, intake_hz: float) -> None:
    """The same batched intake as the monitor, with a handler that does nothing: the DDS take's cost."""
    import rclpy
    from ftrobot_msgs.msg import Heartbeat
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from ftrobot_guard.nodes.department_monitor_node import serialized_layout_matches
    from ftrobot_guard.ros.batched_intake import BatchedIntake
    from ftrobot_guard.ros.qos_profiles import HEARTBEAT_MONITOR

    ACCOUNT.patch(BatchedIntake, "drain", "intake")
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("take_only", context=context)
    intake = BatchedIntake("take_only_intake", context)
    taken = [0]

    def handler(_msg: Any, _info: Any) -> None:
        taken[0] += 1

    for index in range(topics):
        intake.subscribe(Heartbeat, _topic(index, topics), HEARTBEAT_MONITOR, handler, raw=serialized_layout_matches())
    node.create_timer(1.0 / intake_hz, intake.drain)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    print("take-only ready", flush=True)
    cpu, wall, count = _spin_window(executor, seconds, lambda: taken[0])
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "heartbeats": count, "intake_s": ACCOUNT.seconds.get("intake", 0.0)}),
          flush=True)
    intake.destroy()
    node.destroy_node()
    rclpy.shutdown(context=context)


def _per_call_cpu_us(function: Any, calls: int = 2000) -> float:
    best = float("inf")
    for _ in range(5):
        cpu0 = time.thread_time()
        for _ in range(calls):
            function()
        best = min(best, (time.thread_time() - cpu0) / calls * 1e6)
    return best


def _monitor(directory: Path, topics: int, seconds: float, intake_hz: float, profile: Path | None, fine: bool,
             heads_file: bool) -> None:
    import cProfile

    import rclpy
    from builtin_interfaces.msg import Time
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.serialization import serialize_message

    from ftrobot_guard.department.heartbeat_reading import read_heartbeat, read_serialized_heartbeat
    from ftrobot_guard.nodes.department_monitor_node import DepartmentMonitorNode, serialized_layout_matches
    from ftrobot_guard.ros.batched_intake import BatchedIntake

    ACCOUNT.patch(BatchedIntake, "drain", "intake")
    ACCOUNT.patch(DepartmentMonitorNode, "_publish_diagnostics", "diagnostics")
    ACCOUNT.patch(DepartmentMonitorNode, "_check", "check")
    ACCOUNT.patch(DepartmentMonitorNode, "_emit", "alerts")
    ACCOUNT.patch(DepartmentMonitorNode, "_witness", "witness")
    ACCOUNT.patch(DepartmentMonitorNode, "_flush_heads", "witness")  # the batch's write + fsync
    if fine:  # in place, per heartbeat: a few microseconds more per heartbeat for the wrappers
        import ftrobot_guard.department.fleet_monitor as fleet_monitor

        ACCOUNT.patch(DepartmentMonitorNode, "_on_heartbeat", "handler")
        ACCOUNT.patch(fleet_monitor.FleetMonitor, "on_heartbeat", "judge")
        ACCOUNT.patch(fleet_monitor.FleetMonitor, "_authenticate", "authenticate")
        ACCOUNT.patch(fleet_monitor, "read_serialized_heartbeat", "read")
    _count_garbage_collection()
    context = Context()
    rclpy.init(context=context)
    node = DepartmentMonitorNode(context=context, parameter_overrides=[
        Parameter("trusted_ca_files", value=[str(directory / "department" / "ca.pem")]),
        Parameter("heartbeat_topics", value=[_topic(i, topics) for i in range(topics)]),
        Parameter("intake_rate_hz", value=float(intake_hz)),
        Parameter("witnessed_heads_file", value=str(directory / "heads.jsonl") if heads_file else ""),
    ])
    alerts = [0]
    node.add_alert_listener(lambda _alert: alerts.__setitem__(0, alerts[0] + int(ACCOUNT.active)))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    print("monitor ready", flush=True)
    profiler = cProfile.Profile(time.thread_time) if profile is not None else None
    if profiler is not None:
        profiler.enable()
    cpu, wall, count = _spin_window(executor, seconds, lambda: node.heartbeats_received)
    if profiler is not None:
        profiler.disable()
        profile.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(profile / f"department_monitor_{DISTRO}.prof"))
    rows = node.rows()
    verified = sum(1 for r in rows if r.signature_state.value == "verified" and (r.last_seen_age_s or 99) < 3.0)
    robot = _Robot(directory, 1)
    sample = robot.heartbeat("0f" * 16, "ab" * 16, 7, 7.0, Time(sec=1_800_000_000))
    view = read_heartbeat(sample)
    verify_us = _per_call_cpu_us(lambda: robot.public_key.verify(view.signature, view.signed_bytes))  # type: ignore
    serialized = serialize_message(sample)
    read_us = _per_call_cpu_us(lambda: read_serialized_heartbeat(serialized) if serialized_layout_matches()
                               else read_heartbeat(sample))
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "heartbeats": count, "verified": verified, "rows": len(rows),
                      "verify_us": verify_us, "read_us": read_us, "witnessed": len(node.witnessed_heads),
                      "alerts": alerts[0],
                      **{f"{name}_s": value for name, value in ACCOUNT.seconds.items()}}), flush=True)
    node.destroy_node()
    rclpy.shutdown(context=context)


def _load(robots: int, topics: int, seconds: float, intake_hz: float, profile: Path | None,
          fine: bool, heads_file: bool) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        t0 = time.monotonic()
        _make_fleet(directory, robots)
        print(f"made {robots} robot identities in {time.monotonic() - t0:.1f} s")
        me = [sys.executable, __file__, "--dir", str(directory), "--robots", str(robots), "--topics", str(topics),
              "--intake-hz", str(intake_hz), "--seconds", str(seconds)]
        monitor = subprocess.Popen([*me, "--role", "monitor", *(["--profile", str(profile)] if profile else []),
                                    *(["--fine"] if fine else []), *(["--heads-file"] if heads_file else [])],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        take = subprocess.Popen([*me, "--role", "take"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert monitor.stdout is not None and take.stdout is not None
        assert monitor.stdin is not None and take.stdin is not None
        monitor.stdout.readline()
        take.stdout.readline()
        generator = subprocess.Popen([*me[:-2], "--seconds", str(seconds + WARMUP_S + 12), "--role", "generator"],
                                     stdout=subprocess.PIPE, text=True)
        assert generator.stdout is not None
        generator.stdout.readline()  # its keys are loaded: heartbeats start now
        for process in (monitor, take):
            process.stdin.write("go\n")  # type: ignore[union-attr]
            process.stdin.flush()  # type: ignore[union-attr]
        result = json.loads(monitor.stdout.readline())
        take_result = json.loads(take.stdout.readline())
        monitor.wait()
        take.wait()
        generator.wait()
    wall = result["wall_s"]
    share = 100.0 * result["cpu_s"] / wall
    rate = result["heartbeats"] / wall
    take_rate = take_result["heartbeats"] / take_result["wall_s"]
    # Shares of one core at the monitor's rate; they add up to the monitor's share.
    # Receiving: all the take-only process uses (DDS threads, executor, the take), per heartbeat.
    take_share = 100.0 * take_result["cpu_s"] / max(1, take_result["heartbeats"]) * rate
    take_call_share = 100.0 * take_result["intake_s"] / max(1, take_result["heartbeats"]) * rate
    verify_share = result["verify_us"] * rate / 1e4
    read_share = result["read_us"] * rate / 1e4
    handling_share = 100.0 * result.get("intake_s", 0.0) / wall - take_call_share - verify_share - read_share
    diagnostics_share = 100.0 * result.get("diagnostics_s", 0.0) / wall
    check_share = 100.0 * result.get("check_s", 0.0) / wall
    other_share = share - take_share - verify_share - read_share - handling_share - diagnostics_share - check_share
    print(f"monitor: {result['verified']}/{robots} robots verified and fresh, {rate:.0f} heartbeats/s on {topics} "
          f"topic(s), {share:.1f} % of one core ({1e6 * result['cpu_s'] / max(1, result['heartbeats']):.0f} us per "
          f"heartbeat); {result['witnessed']} checkpoints witnessed ({100 * result.get('witness_s', 0) / wall:.1f} %);"
          f" {result['alerts']} alerts in the window ({100 * result.get('alerts_s', 0) / wall:.1f} %);"
          f" garbage collection {100 * result.get('gc_s', 0) / wall:.1f} %")
    if "judge_s" in result:
        per = {name: 1e6 * result[f"{name}_s"] / result["heartbeats"] for name in
               ("intake", "handler", "judge", "authenticate", "read", "witness")}
        print("  in place, per heartbeat (us): " + ", ".join(f"{name} {value:.0f}" for name, value in per.items())
              + " (authenticate: certificate check + Ed25519 verify)")
    print(f"  breakdown (% of one core): receiving {take_share:.1f} (a take-only process at {take_rate:.0f}/s: DDS"
          f" threads, executor, the take itself {take_call_share:.1f}) | Ed25519 verify {verify_share:.1f}"
          f" ({result['verify_us']:.0f} us each) | reading: typed fields + canonical bytes {read_share:.1f}"
          f" ({result['read_us']:.0f} us each) | fleet logic, witness, node {handling_share:.1f} | diagnostics"
          f" {diagnostics_share:.1f} | watchdog {check_share:.1f} | other timers and publishers {other_share:.1f}")
    common = {"bench": "department_monitor_load", "n": robots, "topics": topics, "distro": DISTRO}
    return [
        {**common, "figure": "cpu_percent_one_core", "value": round(share, 2), "unit": "%"},
        {**common, "figure": "receiving_percent_one_core", "value": round(take_share, 2), "unit": "%"},
        {**common, "figure": "verify_percent_one_core", "value": round(verify_share, 2), "unit": "%"},
        {**common, "figure": "read_percent_one_core", "value": round(read_share, 2), "unit": "%"},
        {**common, "figure": "handling_percent_one_core", "value": round(handling_share, 2), "unit": "%"},
        {**common, "figure": "diagnostics_percent_one_core", "value": round(diagnostics_share, 2), "unit": "%"},
        {**common, "figure": "watchdog_percent_one_core", "value": round(check_share, 2), "unit": "%"},
        {**common, "figure": "other_percent_one_core", "value": round(other_share, 2), "unit": "%"},
        {**common, "figure": "robots_verified", "value": result["verified"], "unit": "robots"},
        {**common, "figure": "heartbeats_per_s", "value": round(rate, 1), "unit": "1/s"},
    ]


def _loss_delay(trials: int) -> list[dict[str, object]]:
    import threading

    import rclpy
    from ftrobot_msgs.msg import Heartbeat
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from ftrobot_guard.department.fleet_monitor import AlertKind
    from ftrobot_guard.nodes.department_monitor_node import DepartmentMonitorNode
    from ftrobot_guard.nodes.heartbeat_node import HeartbeatNode
    from ftrobot_guard.trust.dev_credentials import make_department, make_robot
    from ftrobot_guard.trust.identity import make_identity_number

    delays = []
    with tempfile.TemporaryDirectory() as tmp:
        department = make_department(Path(tmp) / "d")
        robot = make_robot(Path(tmp) / "r", department, make_identity_number("440304", 2026, 1), "robot-1")
        context = Context()
        rclpy.init(context=context)
        executor = MultiThreadedExecutor(num_threads=3, context=context)
        monitor = DepartmentMonitorNode(context=context, parameter_overrides=[
            Parameter("trusted_ca_files", value=[str(department.ca_certificate)])])
        executor.add_node(monitor)
        silent_at: list[float] = []
        last_beat: list[float] = []
        monitor.add_alert_listener(
            lambda a: silent_at.append(time.monotonic()) if a.kind == AlertKind.SILENT and a.raised else None)
        probe = rclpy.create_node("probe", context=context)
        probe.create_subscription(Heartbeat, "/bench/heartbeat", lambda _m: last_beat.append(time.monotonic()), 10)
        executor.add_node(probe)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        for _ in range(trials):
            node = HeartbeatNode(context=context, namespace="/bench", parameter_overrides=[
                Parameter("identity_number", value=robot.identity_number), Parameter("robot_name", value="robot-1"),
                Parameter("department", value=robot.department),
                Parameter("private_key_file", value=str(robot.private_key)),
                Parameter("certificate_file", value=str(robot.certificate)),
                Parameter("department_ca_files", value=[str(department.ca_certificate)]),
                Parameter("guardian_on_duty", value="G-1")])
            executor.add_node(node)
            silent_at.clear()
            time.sleep(3.5 + (len(delays) % 3) * 0.3)  # stop at a varying phase of the period
            executor.remove_node(node)
            node.destroy_node()
            stopped = time.monotonic()
            while not silent_at and time.monotonic() - stopped < 10:
                time.sleep(0.01)
            if silent_at:
                delays.append(silent_at[0] - last_beat[-1])
                print(f"  SILENT {delays[-1]:.3f} s after the last heartbeat")
            time.sleep(1.5)
        executor.shutdown()
        rclpy.shutdown(context=context)
    delays.sort()
    median = delays[len(delays) // 2]
    print(f"heartbeat loss detected {median:.3f} s (median), {delays[-1]:.3f} s (max) after the last heartbeat "
          f"(window 3 x 1.0 s, watchdog 4 Hz)")
    return [
        {"bench": "heartbeat_loss_detection", "figure": "median_s", "value": round(median, 3), "unit": "s",
         "n": len(delays), "distro": DISTRO},
        {"bench": "heartbeat_loss_detection", "figure": "max_s", "value": round(delays[-1], 3), "unit": "s",
         "n": len(delays), "distro": DISTRO},
    ]


def _size_probe_monitor(directory: Path) -> None:
    """The real monitor on /probe/heartbeat; answers each line on stdin with how many heartbeats it has taken."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from ftrobot_guard.nodes.department_monitor_node import DepartmentMonitorNode

    context = Context()
    rclpy.init(context=context)
    node = DepartmentMonitorNode(context=context, parameter_overrides=[
        Parameter("trusted_ca_files", value=[str(directory / "department" / "ca.pem")]),
        Parameter("heartbeat_topics", value=["/probe/heartbeat"]),
    ])
    alerts = [0]
    node.add_alert_listener(lambda _alert: alerts.__setitem__(0, alerts[0] + int(ACCOUNT.active)))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    print("monitor ready", flush=True)
    while True:
        executor.spin_once(timeout_sec=0.01)
        if select.select([sys.stdin], [], [], 0.0)[0]:
            if not sys.stdin.readline():
                break
            print(node.heartbeats_received, flush=True)
    node.destroy_node()
    rclpy.shutdown(context=context)


SIZE_PROBE_BYTES = (64_000, 128_000, 256_000, 384_000, 512_000, 640_000, 768_000, 1_000_000, 2_000_000, 4_000_000)


def _size_limit(attempts: int) -> list[dict[str, object]]:
    """Which heartbeat sizes the monitor in another process hears, and how often (real DDS).

    The monitor subscribes best effort (so that it matches every publisher); DDS fragments a large
    sample and does not resend a lost fragment to a best-effort reader, so above some size only some
    heartbeats arrive, whatever the publisher offers. For each size ``attempts`` heartbeats are sent
    from a best-effort publisher (each waited for up to 1 s), then from a reliable one.
    """
    import rclpy
    from ftrobot_msgs.msg import Heartbeat
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import serialize_message

    from ftrobot_guard.trust.dev_credentials import make_department

    def heartbeat(size: int) -> Heartbeat:
        return Heartbeat(identity_number="440304-RB-2026-000001-0", boot_id="probe", certificate=bytes(size))

    table: dict[str, list[tuple[int, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        make_department(Path(tmp) / "department")
        monitor = subprocess.Popen([sys.executable, __file__, "--role", "size-monitor", "--dir", tmp],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert monitor.stdin is not None and monitor.stdout is not None
        monitor.stdout.readline()
        rclpy.init()
        node = rclpy.create_node("size_probe")

        def taken() -> int:
            monitor.stdin.write("count\n")  # type: ignore[union-attr]
            monitor.stdin.flush()  # type: ignore[union-attr]
            return int(monitor.stdout.readline())  # type: ignore[union-attr]

        def heard_once(publisher: Any, size: int) -> bool:
            before = taken()
            publisher.publish(heartbeat(size))
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                if taken() > before:
                    return True
                time.sleep(0.02)
            return taken() > before

        offers = (("best_effort", ReliabilityPolicy.BEST_EFFORT), ("reliable", ReliabilityPolicy.RELIABLE))
        for name, reliability in offers:
            publisher = node.create_publisher(
                Heartbeat, "/probe/heartbeat", QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                                                          reliability=reliability))
            deadline = time.monotonic() + 10.0
            while publisher.get_subscription_count() < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            table[name] = []
            for size in SIZE_PROBE_BYTES:
                heard = sum(heard_once(publisher, size) for _ in range(attempts))
                table[name].append((len(serialize_message(heartbeat(size))), heard))
                print(f"  {name:11s} {table[name][-1][0]:>9d} bytes: {heard}/{attempts} heard", flush=True)
            node.destroy_publisher(publisher)
        node.destroy_node()
        rclpy.shutdown()
        monitor.stdin.close()
        monitor.wait(timeout=20)
    results: list[dict[str, object]] = []
    for name, rows in table.items():
        always = [size for size, heard in rows if heard == attempts]
        first_loss = next((size for size, heard in rows if heard < attempts), None)
        up_to = max((size for size in always if first_loss is None or size < first_loss), default=0)
        print(f"{name} publisher: every heartbeat heard up to {up_to} bytes (serialized)"
              + (f"; at {first_loss} bytes {dict(rows)[first_loss]}/{attempts}" if first_loss else ""))
        common = {"bench": "heartbeat_size_limit", "n": attempts, "distro": DISTRO, "publisher": name}
        results.append({**common, "figure": "always_heard_up_to_bytes", "value": up_to, "unit": "B"})
        results += [{**common, "figure": f"heard_of_{attempts}_at_{size}_bytes", "value": heard, "unit": "heartbeats"}
                    for size, heard in rows]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, default=1000)
    parser.add_argument("--topics", type=int, default=1, help="heartbeat topics the fleet is spread over")
    parser.add_argument("--intake-hz", type=float, default=0.0,
                        help="the monitor's intake_rate_hz (and the take-only process's); 0: the node's default")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--trials", type=int, default=5, help="loss-delay trials (0: skip that figure)")
    parser.add_argument("--size-attempts", type=int, default=10,
                        help="heartbeats sent per size for the size figure (0: skip that figure)")
    parser.add_argument("--robots-figure", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the load figure (--no-robots-figure: only the others)")
    parser.add_argument("--profile", type=Path, help="directory for the monitor's cProfile statistics")
    parser.add_argument("--heads-file", action="store_true",
                        help="keep witnessed heads in a file, as config/department.yaml does (default: in memory)")
    parser.add_argument("--fine", action="store_true",
                        help="also time reading, authentication and judging of each heartbeat in place")
    parser.add_argument("--role", choices=["bench", "monitor", "take", "generator", "size-monitor"], default="bench")
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    if args.role == "generator":
        _generator(args.dir, args.robots, args.topics, args.seconds)
        return
    if args.role == "monitor":
        _monitor(args.dir, args.topics, args.seconds, args.intake_hz, args.profile, args.fine, args.heads_file)
        return
    if args.role == "take":
        _take_only(args.topics, args.seconds, args.intake_hz)
        return
    if args.role == "size-monitor":
        _size_probe_monitor(args.dir)
        return
    if args.intake_hz <= 0.0:
        from ftrobot_guard.nodes.department_monitor_node import DEFAULT_INTAKE_RATE_HZ

        args.intake_hz = DEFAULT_INTAKE_RATE_HZ
    figures = (_load(args.robots, args.topics, args.seconds, args.intake_hz, args.profile, args.fine, args.heads_file)
               if args.robots_figure else [])
    if args.trials > 0:
        figures += _loss_delay(args.trials)
    if args.size_attempts > 0:
        figures += _size_limit(args.size_attempts)
    for figure in figures:
        print(json.dumps(figure))


if __name__ == "__main__":
    main()
