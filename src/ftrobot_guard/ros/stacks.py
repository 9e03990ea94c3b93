"""Which nodes `ftrobot up STACK` starts: the same nodes, names and params files as launch/*.launch.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeSpec:
    module: str       # Python module of the node class
    class_name: str   # rclpy Node subclass taking **node_kwargs
    node_name: str    # name the node gives itself (the key of its section in params files)
    process: str = ""  # nodes with the same process name share one OS process ("" = one process for the stack)


STACKS: dict[str, tuple[NodeSpec, ...]] = {
    # The robot-side guard stack, in two processes: the guard (command gate, detectors, supervisor: one
    # single-threaded executor that nothing else competes with) and the status process (heartbeat and
    # black-box recorder). A guard killed or hung leaves the robot to the hardware's watchdog (DAMPING);
    # the recorder keeps recording what happened.
    "robot": (
        NodeSpec("ftrobot_guard.nodes.guard_node", "GuardNode", "guard", process="guard"),
        NodeSpec("ftrobot_guard.nodes.heartbeat_node", "HeartbeatNode", "heartbeat", process="status"),
        NodeSpec("ftrobot_guard.nodes.recorder_node", "RecorderNode", "recorder", process="status"),
    ),
    # The guard alone (its status process runs elsewhere; tests and benchmarks).
    "guard": (NodeSpec("ftrobot_guard.nodes.guard_node", "GuardNode", "guard"),),
    # The heartbeat alone (a robot whose other guard nodes run elsewhere; tests).
    "heartbeat": (NodeSpec("ftrobot_guard.nodes.heartbeat_node", "HeartbeatNode", "heartbeat"),),
    # The supervising department's monitor.
    "department": (
        NodeSpec("ftrobot_guard.nodes.department_monitor_node", "DepartmentMonitorNode", "department_monitor"),
    ),
    # The simulated humanoid behind the hardware contract.
    "sim": (NodeSpec("ftrobot_guard.nodes.humanoid_sim_node", "HumanoidSimNode", "humanoid_sim"),),
}

DEFAULT_PARAMS: dict[str, tuple[str, ...]] = {
    "robot": ("robot.yaml", "recorder.yaml"),
    "guard": ("robot.yaml",),
    "heartbeat": ("robot.yaml",),
    "department": ("department.yaml",),
    "sim": ("sim.yaml",),
}

# The launch file in launch/ that starts the same nodes with the same default params files as each stack
# (tests/test_launch_files.py keeps them in step). The heartbeat stack has none: it is robot.launch.py
# without the recorder. launch/gazebo.launch.py starts Gazebo and its bridge, no node of this package.
LAUNCH_FILES: dict[str, str] = {
    "robot": "robot.launch.py",
    "department": "department.launch.py",
    "sim": "sim.launch.py",
}

# Stacks whose nodes must not share callbacks across threads: the simulator's physics thread needs the
# GIL back within each 2 ms step, and a multi-threaded executor's contention delays guard/alive past the
# hardware watchdog (measured with its former 100 ms: bench/sim_realtime.py).
# The guard's control-rate timer must not wait behind another callback either.
SINGLE_THREADED_PROCESSES = frozenset({"sim", "guard"})
# Processes on rclpy's EventsExecutor (ros/node_spinner.py): the guard, whose joint commands (up to 1 kHz)
# and e-stop must not pay a Python wait-set rebuild per message.
EVENTS_EXECUTOR_PROCESSES = frozenset({"guard"})


def processes(stack: str) -> tuple[str, ...]:
    """The OS processes of a stack, in start order (one, named after the stack, unless its nodes say otherwise)."""
    names: list[str] = []
    for spec in STACKS[stack]:
        name = spec.process or stack
        if name not in names:
            names.append(name)
    return tuple(names)


def process_nodes(stack: str, process: str) -> tuple[NodeSpec, ...]:
    """The nodes of one process of a stack."""
    return tuple(spec for spec in STACKS[stack] if (spec.process or stack) == process)
