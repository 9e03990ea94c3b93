"""The floor under bench/estop_latency.py: a bare rclpy chain of two hops in three processes, nothing else.

The e-stop target (p50 <= 0.4 ms from the ``estop`` message to the actuation request at the hardware) crosses
two DDS hops: operator -> guard, guard -> hardware. This bench measures what those two hops alone cost with
rclpy on this machine, without the guard, without sensor traffic and without the bench's fake driver:

* ``--role hardware`` (a child process): serves ``floor/set_actuation_mode`` (ftrobot_msgs/SetActuationMode)
  and subscribes ``floor/request`` (std_msgs/Bool); records ``time.perf_counter_ns()`` of every arrival;
* ``--role relay`` (a child process): on ``floor/estop`` (std_msgs/Bool) it calls the service at once
  (``--via service``, the hardware contract's way) or publishes ``floor/request`` (``--via topic``);
* this process: publishes ``floor/estop`` ``--trials`` times, 5-15 ms apart, recording ``t0`` before each.

``--via one_hop`` is the single hop under both: this process publishes ``floor/request`` straight to the hardware
process (no relay), the least any cross-process e-stop path costs here, even one that skipped the guard.

Every node runs on rclpy's EventsExecutor (as the guard does; ``--executor single`` for rclpy's
SingleThreadedExecutor) with the guard's reliable command QoS. Latency =
arrival - t0; both are ``CLOCK_MONOTONIC`` (``perf_counter_ns`` on Linux), one clock for every process of the
machine. Prints count, p50/p90/p99/max (µs) per way, the load average before and after, and one JSON object
per figure.

    python bench/rclpy_chain_floor.py [--trials 3000] [--via service topic one_hop] [--executor events|single]
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import rclpy
from ftrobot_msgs.srv import SetActuationMode
from rclpy.context import Context
from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from std_msgs.msg import Bool

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.ros.qos_profiles import COMMANDS

MATCH_WINDOW_NS = 20_000_000   # an arrival later than this after t0 is not counted as that trial's


def _spin_for(executor: Executor | EventsExecutor, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)


def child(role: str, via: str, executor_kind: str, seconds: float, out: Path | None) -> int:
    context = Context()
    rclpy.init(context=context)
    node = Node(f"floor_{role}", context=context)
    executor: Executor | EventsExecutor = (EventsExecutor(context=context) if executor_kind == "events"
                                           else SingleThreadedExecutor(context=context))
    executor.add_node(node)
    arrivals: list[int] = []
    if role == "hardware":
        def on_request(request: SetActuationMode.Request,
                       response: SetActuationMode.Response) -> SetActuationMode.Response:
            arrivals.append(time.perf_counter_ns())
            response.success, response.mode, response.message = True, request.mode, "ok"
            return response

        node.create_service(SetActuationMode, "floor/set_actuation_mode", on_request)
        node.create_subscription(Bool, "floor/request", lambda _msg: arrivals.append(time.perf_counter_ns()),
                                 COMMANDS)
    elif via == "service":
        client = node.create_client(SetActuationMode, "floor/set_actuation_mode")
        hold = int(ActuationMode.HOLD)
        node.create_subscription(
            Bool, "floor/estop",
            lambda _msg: client.call_async(SetActuationMode.Request(mode=hold, reason="estop")), COMMANDS)
    else:
        publisher = node.create_publisher(Bool, "floor/request", COMMANDS)
        node.create_subscription(Bool, "floor/estop", lambda _msg: publisher.publish(Bool(data=True)), COMMANDS)
    try:
        _spin_for(executor, seconds)
        if out is not None:   # before the teardown: what was measured is kept whatever it does
            out.write_text(json.dumps(arrivals), encoding="utf-8")
    finally:
        # The node leaves the executor before it is destroyed (destroying it after the EventsExecutor's shutdown
        # was seen to spin in rclpy's Node.destroy_node here).
        executor.remove_node(node)
        node.destroy_node()
        executor.shutdown(timeout_sec=2.0)
        rclpy.shutdown(context=context)
    return 0


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    return values[min(len(values), max(1, math.ceil(fraction * len(values)))) - 1]


def run(via: str, executor_kind: str, trials: int, domain: int, directory: Path) -> dict[str, float]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    seconds = 6.0 + trials * 0.0125
    arrivals_file = directory / f"arrivals_{via}.json"
    common = ["--via", via, "--executor", executor_kind, "--seconds", f"{seconds:.1f}"]
    children = [subprocess.Popen([sys.executable, __file__, "--role", "hardware", *common, "--out", str(arrivals_file)],
                                 env=env)]
    if via != "one_hop":
        children.append(subprocess.Popen([sys.executable, __file__, "--role", "relay", *common], env=env))
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    context = Context()
    rclpy.init(context=context)
    node = Node("floor_operator", context=context)
    publisher = node.create_publisher(Bool, "floor/request" if via == "one_hop" else "floor/estop", COMMANDS)
    deadline = time.monotonic() + 5.0
    while publisher.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)   # the relay's client matches the service too
    sent: list[int] = []
    for _ in range(trials):
        sent.append(time.perf_counter_ns())
        publisher.publish(Bool(data=True))
        time.sleep(0.005 + 0.010 * random.random())
    node.destroy_node()
    rclpy.shutdown(context=context)
    for process in children:
        try:
            process.wait(timeout=seconds + 30.0)
        except subprocess.TimeoutExpired:
            process.kill()   # a child that hangs in its teardown: its arrivals were written before it
            process.wait()
            print(f"  (killed a child that did not exit: {' '.join(map(str, process.args[2:4]))})", flush=True)
    if not arrivals_file.exists():
        raise RuntimeError(f"the hardware process wrote no arrivals (via {via})")
    arrived = sorted(json.loads(arrivals_file.read_text(encoding="utf-8")))
    latencies: list[float] = []
    for t0 in sent:
        i = bisect.bisect_left(arrived, t0)
        if i < len(arrived) and arrived[i] - t0 <= MATCH_WINDOW_NS:
            latencies.append((arrived[i] - t0) / 1000.0)
    latencies.sort()
    return {"count": len(latencies), "trials": trials, "p50_us": percentile(latencies, 0.5),
            "p90_us": percentile(latencies, 0.9), "p99_us": percentile(latencies, 0.99),
            "max_us": latencies[-1] if latencies else math.nan}


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=3000)
    parser.add_argument("--via", nargs="+", choices=("service", "topic", "one_hop"),
                        default=["service", "topic", "one_hop"])
    parser.add_argument("--executor", choices=("events", "single"), default="events")
    parser.add_argument("--domain", type=int, default=200 + os.getpid() % 30)
    parser.add_argument("--role", choices=("hardware", "relay"), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role is not None:
        return child(args.role, args.via[0], args.executor, args.seconds, args.out)
    print(f"bare rclpy chain ({args.executor} executor), {args.trials} trials per way; load {load_average()}",
          flush=True)
    figures = []
    with tempfile.TemporaryDirectory(prefix="ftrobot_floor_") as directory:
        for via in args.via:
            result = run(via, args.executor, args.trials, args.domain, Path(directory))
            way = "estop -> hardware, one hop     " if via == "one_hop" else f"estop -> relay -> hardware via {via:7s}"
            print(f"  {way}: {result['count']:5.0f} of {result['trials']} arrived; "
                  f"p50 {result['p50_us']:5.0f} µs, p90 {result['p90_us']:5.0f}, p99 {result['p99_us']:5.0f}, "
                  f"max {result['max_us']:6.0f}", flush=True)
            name = "one_hop" if via == "one_hop" else f"two_hops_via_{via}"
            figures.append({"bench": "rclpy_chain_floor", "figure": name, "executor": args.executor, **result,
                            "unit": "us"})
    print(f"load after {load_average()}")
    for figure in figures:
        print(json.dumps(figure))
    return 0


if __name__ == "__main__":
    sys.exit(main())
