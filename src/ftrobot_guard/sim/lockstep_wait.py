"""Lock-step: the simulator never runs far ahead of a guard that keeps up, and never hangs on one that is gone.

Once a guard heartbeat (``guard/alive``) has been seen, the simulator does not step further than
``lead_s`` of sim time ahead of the last one: a slow guard is waited for rather than tripped by the
watchdog. After ``patience_s`` of wall time without a newer heartbeat it gives up on that one and
runs on (the guard is gone; the watchdog then sees the silence in sim time) until a newer heartbeat
arrives, which re-arms the wait. No rclpy; the clock, the sleep and the state reader are given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

POLL_S = 0.0002


@dataclass(frozen=True)
class GuardHeartbeatState:
    seen: bool              # any guard/alive accepted yet
    last_alive_s: float     # sim time of the last one
    sim_time_s: float       # current sim time


class LockstepGuardWait:
    def __init__(self, lead_s: float, patience_s: float) -> None:
        if not math.isfinite(lead_s) or lead_s <= 0.0:
            raise ValueError(f"lead_s must be a positive finite number, got {lead_s}")
        if not math.isfinite(patience_s) or patience_s < 0.0:
            raise ValueError(f"patience_s must be a finite number >= 0, got {patience_s}")
        self.lead_s = lead_s
        self.patience_s = patience_s
        self._given_up_on: float | None = None

    def must_wait(self, state: GuardHeartbeatState) -> bool:
        """True when stepping now would run more than ``lead_s`` ahead of a heartbeat not yet given up on."""
        return (
            state.seen
            and state.sim_time_s - state.last_alive_s > self.lead_s
            and self._given_up_on != state.last_alive_s
        )

    def wait(
        self,
        read_state: Callable[[], GuardHeartbeatState],
        monotonic: Callable[[], float],
        sleep: Callable[[float], None],
        stopped: Callable[[], bool],
    ) -> bool:
        """Block until the next step may run; False if it gave up on the last heartbeat (or was stopped) first."""
        deadline = monotonic() + self.patience_s
        while not stopped():
            state = read_state()
            if not self.must_wait(state):
                return True
            if monotonic() >= deadline:
                self._given_up_on = state.last_alive_s
                return False
            sleep(POLL_S)
        return False
