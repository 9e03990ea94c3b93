"""The supervising department's side: the fleet monitor and its table.

:mod:`.heartbeat_reading` reads a received heartbeat (serialized, as DDS delivers it, or as a
message object) into its typed content and the canonical bytes its signature covers;
:mod:`.fleet_monitor` authenticates heartbeats against the department CA, tracks each robot's boot
session, freshness and reported state, and raises and clears alerts; :mod:`.fleet_table` renders
the live table and alert lines for `ftrobot dept monitor` and the demo. No rclpy: the monitor node
hands it each received heartbeat with how it arrived (topic, publisher gid, publication number).
"""
