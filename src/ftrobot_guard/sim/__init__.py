"""Simulated Unitree G1 humanoid behind the hardware contract (docs/design.md, § Hardware contract).

Pure modules (no rclpy): the model loader, the joint-level actuation law, thermal and battery models,
the fault schedule, ground truth, pictures, and the timing of the node's physics loop (real-time
pacing and the achieved real-time factor, which outputs are due at a step, the delayed-message
queue, the lock-step wait for the guard's heartbeat). ``HumanoidSim`` in
:mod:`ftrobot_guard.sim.humanoid_sim` ties them together for tests, benchmarks and the ROS node.
"""

import os
import sys

# Offscreen rendering (snapshots) needs its OpenGL backend chosen before mujoco is first imported.
# Without a display, EGL (Mesa on the CPU here) is the one that works; a user's choice is kept.
if "mujoco" not in sys.modules and not os.environ.get("MUJOCO_GL") and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
