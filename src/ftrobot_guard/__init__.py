"""ftrobot_guard: robot-side safety and compliance layer for humanoid robot employees."""

__version__ = "0.1.0"
