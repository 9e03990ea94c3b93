"""Simulated Unitree G1 humanoid behind the hardware contract (DESIGN.md §4).

Pure modules (no rclpy): the model loader, the joint-level actuation law, thermal and battery models,
the fault schedule, ground truth, command validation, pictures. ``HumanoidSim`` in
:mod:`ftrobot_guard.sim.humanoid_sim` ties them together for tests, benchmarks and the ROS node.
"""
