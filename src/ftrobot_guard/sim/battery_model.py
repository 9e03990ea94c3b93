"""Battery: energy bookkeeping with a linear open-circuit voltage in state of charge.

Power drawn = computer + idle power of energised motors + copper losses (∝ torque²) + positive
mechanical power (tau · qdot) + any injected drain. Defaults approximate the G1's 9 Ah, 13-cell pack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatteryParameters:
    capacity_ah: float = 9.0
    voltage_full: float = 54.6
    voltage_empty: float = 43.0
    initial_charge_fraction: float = 0.9
    computer_power_w: float = 60.0
    motor_idle_power_w: float = 1.5          # per energised motor
    copper_loss_at_peak_w: float = 60.0      # per motor at its peak torque


@dataclass(frozen=True)
class BatteryReading:
    voltage: float
    current: float          # A, negative while discharging (sensor_msgs/BatteryState convention)
    charge_ah: float
    capacity_ah: float
    percentage: float       # 0..1
    power_w: float


class BatteryModel:
    def __init__(self, effort_limit: np.ndarray, parameters: BatteryParameters = BatteryParameters()) -> None:
        if parameters.capacity_ah <= 0.0 or not 0.0 <= parameters.initial_charge_fraction <= 1.0:
            raise ValueError("battery capacity must be positive and the initial charge within [0, 1]")
        self._p = parameters
        self._limit = np.asarray(effort_limit, dtype=np.float64)
        self.charge_ah = parameters.capacity_ah * parameters.initial_charge_fraction
        self.power_w = 0.0

    def voltage(self) -> float:
        fraction = self.charge_ah / self._p.capacity_ah
        return self._p.voltage_empty + (self._p.voltage_full - self._p.voltage_empty) * fraction

    def step(
        self, torque: np.ndarray, joint_velocity: np.ndarray, motors_energised: bool, dt: float,
        extra_power_w: float = 0.0,
    ) -> None:
        power = self._p.computer_power_w + extra_power_w
        if motors_energised:
            power += self._p.motor_idle_power_w * self._limit.size
            power += float(np.sum(self._p.copper_loss_at_peak_w * (torque / self._limit) ** 2))
            power += float(np.sum(np.maximum(torque * joint_velocity, 0.0)))
        self.power_w = power
        self.charge_ah = max(0.0, self.charge_ah - power * dt / 3600.0 / self.voltage())

    def reading(self) -> BatteryReading:
        voltage = self.voltage()
        return BatteryReading(
            voltage=voltage,
            current=-self.power_w / voltage,
            charge_ah=self.charge_ah,
            capacity_ah=self._p.capacity_ah,
            percentage=self.charge_ah / self._p.capacity_ah,
            power_w=self.power_w,
        )
