"""The `ftrobot` command line, including `ftrobot demo`.

Command groups for identities and certificates (`id`, `dept`), the black box (`log`), and starting
node stacks (`up`, `demo`). Only the node starters (:mod:`.run_commands`, :mod:`.demo`) import rclpy.
"""
