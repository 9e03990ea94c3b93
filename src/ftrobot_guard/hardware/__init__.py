"""The hardware contract: what the guard may ask of a robot's driver, and how a request is checked.

Actuation modes (NORMAL, HOLD, DAMPING, ZERO_TORQUE, POWER_OFF) and the validation of joint commands, gains and
base velocities are shared by the simulator (which enforces them as a driver would), the command
gate (which never forwards what a driver would refuse) and the safety supervisor (which requests
the stop modes). ``docs/design.md`` (§ Hardware contract) describes the topics and services. No rclpy.
"""
