"""ROS 2 nodes: thin adapters that turn messages into calls on the pure logic and results into messages.

Each node declares its parameters (read-only where they cannot change at run time), chooses QoS from
:mod:`ftrobot_guard.ros.qos_profiles`, and publishes ``/diagnostics``. Logic lives in the concept
packages (trust, hardware, safety, status, department, blackbox, sim), where it is tested without ROS.
"""
