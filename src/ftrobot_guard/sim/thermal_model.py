"""First-order actuator thermal model driven by torque squared (copper losses).

    C dT/dt = P_heat - (T - T_ambient) / R,   P_heat = P_peak (tau / tau_max)^2 + P_fault

written with the time constant tau_th = R C and the steady-state rise at peak torque
dT_peak = R P_peak:  dT/dt = (dT_peak (tau/tau_max)^2 - (T - T_ambient)) / tau_th + heat_rate_fault.
Integrated exactly over a step (exponential), so any step size is stable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThermalParameters:
    ambient_c: float = 25.0
    time_constant_s: float = 120.0
    peak_torque_rise_c: float = 150.0   # steady rise if a joint held its peak torque forever


class ThermalModel:
    def __init__(self, effort_limit: np.ndarray, parameters: ThermalParameters = ThermalParameters()) -> None:
        if parameters.time_constant_s <= 0.0:
            raise ValueError("thermal time constant must be positive")
        self._limit = np.asarray(effort_limit, dtype=np.float64)
        self._p = parameters
        self.temperature = np.full(self._limit.shape, parameters.ambient_c, dtype=np.float64)

    @property
    def parameters(self) -> ThermalParameters:
        return self._p

    def steady_state(self, torque: np.ndarray) -> np.ndarray:
        """Temperature a constant torque would settle at."""
        return self._p.ambient_c + self._p.peak_torque_rise_c * (np.asarray(torque) / self._limit) ** 2

    def step(self, torque: np.ndarray, dt: float, extra_heat_rate_c_per_s: np.ndarray | None = None) -> np.ndarray:
        target = self.steady_state(torque)
        if extra_heat_rate_c_per_s is not None:
            target = target + extra_heat_rate_c_per_s * self._p.time_constant_s
        decay = np.exp(-dt / self._p.time_constant_s)
        self.temperature = target + (self.temperature - target) * decay
        return self.temperature
