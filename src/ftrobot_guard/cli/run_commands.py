"""`ftrobot up STACK` (the launch files' nodes without launch_ros) and `ftrobot demo`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ftrobot_guard.cli.command_groups import CliError
from ftrobot_guard.ros.package_share import package_share
from ftrobot_guard.ros.stacks import DEFAULT_PARAMS, STACKS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = subparsers.add_parser(
        "up",
        help="start a stack of nodes (robot, department, sim) with YAML params, without launch_ros",
        description="Start the nodes of a stack in one process with the same params files the launch files "
        "use; stop cleanly on SIGINT/SIGTERM. Set ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE as for any "
        "ROS 2 process.",
    )
    up.add_argument("stack", choices=sorted(STACKS), help="which nodes to start")
    up.add_argument(
        "--params",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="ROS 2 params file (repeatable); default: the package's config files of the stack",
    )
    up.add_argument("--namespace", default="", metavar="NS", help="namespace of every node, e.g. /robot1")
    up.add_argument("--process", metavar="NAME", help="start only this process of a multi-process stack "
                    "(robot: guard or status); without it each process is started as a child")
    up.add_argument("--lockstep", action="store_true", help="sim: step as fast as possible and publish /clock")
    up.add_argument("--headless", action="store_true", help="sim: no viewer window (always true on this machine)")
    up.set_defaults(func=_up)

    demo = subparsers.add_parser(
        "demo",
        help="watch the guard stack at work: sim, heartbeat, department monitor, silence and an impostor",
        description="Runs the demonstration scenario of the README with freshly generated development keys "
        "in --out (never commit them).",
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="where keys, logs and pictures go")
    demo.add_argument("--no-sim", action="store_true", help="skip the simulated humanoid")
    demo.set_defaults(func=_demo)


def _validate_namespace(namespace: str) -> str:
    if not namespace:
        return ""
    from ftrobot_guard.ros.ros_names import NameError_, validate_namespace

    try:
        return validate_namespace(namespace)
    except NameError_ as exc:
        raise CliError(f"--namespace: {exc}") from None


def _up(args: argparse.Namespace) -> int:
    from ftrobot_guard.ros.stack_runner import StackError, run_processes, run_stack
    from ftrobot_guard.ros.stacks import processes

    params = list(args.params)
    if not params:
        params = [package_share() / "config" / name for name in DEFAULT_PARAMS[args.stack]]
        for default in params:
            if not default.is_file():
                raise CliError(f"no --params given and {default} is not installed")
    for path in params:
        if not path.is_file():
            raise CliError(f"--params {path}: no such file")
    namespace = _validate_namespace(args.namespace)
    per_node: dict[str, dict[str, object]] = {}
    if args.stack == "sim":
        from ftrobot_guard.nodes.humanoid_sim_node import node_parameter_overrides

        per_node["humanoid_sim"] = dict(node_parameter_overrides(lockstep=args.lockstep, headless=args.headless))
    elif args.lockstep:
        per_node = {spec.node_name: {"use_sim_time": True} for spec in STACKS[args.stack]}
    if args.process is None and len(processes(args.stack)) > 1:
        base = [sys.executable, "-m", "ftrobot_guard.cli.main", "up", args.stack, "--namespace", namespace]
        for path in params:
            base += ["--params", str(path)]
        if args.lockstep:
            base.append("--lockstep")
        return run_processes(args.stack, lambda process: [*base, "--process", process])
    try:
        return run_stack(args.stack, params, namespace, per_node_overrides=per_node, process=args.process)
    except StackError as exc:
        raise CliError(str(exc)) from None


def _demo(args: argparse.Namespace) -> int:
    from ftrobot_guard.cli.demo import run_demo

    return run_demo(args.out, with_sim=not args.no_sim)
