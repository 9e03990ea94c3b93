"""Safety: the modes a robot can be in and, as it is built, the logic that moves it between them.

:mod:`.modes` is the one place that names the safety modes (BOOT, NORMAL, REDUCED, SAFE_STOP,
POWER_DOWN, ESTOP) with their numbers, stop categories and what each allows; every node and the
department monitor use it. The operating envelope, command gate, anomaly detectors and the latched
supervisor belong here too, as pure logic that thin nodes wrap. No rclpy.
"""
