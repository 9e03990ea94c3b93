"""The supervising department's side: the fleet monitor and its table.

:mod:`.fleet_monitor` authenticates heartbeats against the department CA, tracks each robot's boot
session, freshness and reported state, and raises and clears alerts; :mod:`.fleet_table` renders
the live table and alert lines for `ftrobot dept monitor` and the demo. No rclpy: the monitor node
hands it each received Heartbeat message (read by attribute) with how it arrived.
"""
