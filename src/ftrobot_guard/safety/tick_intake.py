"""What the guard takes from its sensors at each control tick.

The guard node does not handle a sensor message when it arrives: it keeps it, and at each control tick
(``control_rate_hz``) hands the guard core the **newest** reading of each topic. Its age is what the
watchdogs judge, and a fault that lasts shows in the newest reading too. Of ``joint_states`` it also
keeps the **earlier** readings of the tick, oldest first: only the POWER_DOWN lowering's posture
estimate takes them (safety/posture_estimate.py), which averages the encoder noise over 0.1 s.

:class:`TickIntake` is that policy alone, for any kind of reading (the node keeps serialized messages,
the simulator harness :class:`~ftrobot_guard.sim.guarded_sim.GuardedSim` keeps deliveries), so the node
and the tests that stand in for it take their sensors the same way.
"""

from __future__ import annotations

from typing import Generic, TypeVar

Reading = TypeVar("Reading")

HISTORY_TOPIC = "joint_states"   # the one topic whose earlier readings of a tick are kept
DEFAULT_CONTROL_RATE_HZ = 100.0  # the guard node's control_rate_hz default (config/robot.yaml sets the same)


class TickIntake(Generic[Reading]):
    """The newest reading per topic since the last :meth:`take`, and the earlier ``joint_states`` ones."""

    def __init__(self, history_limit: int = 64) -> None:
        if history_limit < 0:
            raise ValueError(f"history_limit must be >= 0, got {history_limit}")
        self._history_limit = history_limit
        self._newest: dict[str, Reading] = {}
        self._earlier: list[Reading] = []

    def keep(self, topic: str, reading: Reading) -> None:
        """A reading arrived; a newer one of the same topic replaces it for the tick (of ``joint_states``
        the replaced one is kept as earlier, up to ``history_limit``: the oldest go first)."""
        if topic == HISTORY_TOPIC and topic in self._newest:
            self._earlier.append(self._newest[topic])
            if len(self._earlier) > self._history_limit:
                del self._earlier[: len(self._earlier) - self._history_limit]
        self._newest[topic] = reading

    def take(self) -> tuple[list[Reading], dict[str, Reading]]:
        """For this tick: the earlier ``joint_states`` readings (oldest first) and the newest per topic, in
        the order the topics first arrived; both are emptied."""
        earlier, newest = self._earlier, self._newest
        self._earlier, self._newest = [], {}
        return earlier, newest
