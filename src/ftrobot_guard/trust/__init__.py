"""Trust: who a robot, a guardian or the department is, and how anything they say is proven.

Identity numbers issued by the department, key files (Ed25519 for signing, X25519 for log
encryption), the department CA and the certificates it issues, the canonical signed encoding of
message fields, the robot's own credential self-check, and throw-away development credentials for
the demo, tests and benches. Pure logic over :mod:`cryptography`; no rclpy.
"""
