"""ROS plumbing shared by every node: the only package, with nodes/ and the CLI's node starters, that uses rclpy.

Params files read and checked before a node starts, the ROS arguments (and params files) a process
was started with, ROS name rules, interface types named as strings, QoS profiles per topic, declared
(read-only) node parameters, batched intake of high-rate topics, the node stacks that `ftrobot up`
and the launch files start, the in-process stack runner, spinning nodes and stopping them cleanly,
and where the package's launch/ and config/ files are installed. Importing this package itself loads no rclpy: each
module that needs it imports it.
"""
