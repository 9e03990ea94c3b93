"""Status reporting: what the robot tells the department about itself, built without ROS.

The heartbeat report (identity, safety mode, input liveness, software and configuration digests,
black-box checkpoint) is assembled here from plain values; the heartbeat node only fills a message
and signs it. Liveness of watched input topics and the software/configuration digests live here too.
No rclpy.
"""
