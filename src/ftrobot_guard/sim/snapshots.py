"""Headless PNG snapshots of the simulated robot (MuJoCo offscreen rendering).

Offscreen rendering needs an OpenGL backend chosen before mujoco is first imported: MUJOCO_GL=egl
(works on a CPU through Mesa). :mod:`ftrobot_guard.sim` sets it when no display is present;
``render_png`` reports a clear error when no context can be made.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from ftrobot_guard.sim.humanoid_sim import HumanoidSim


class SnapshotError(RuntimeError):
    """Offscreen rendering is unavailable; the message says what to set."""


def render_rgb(sim: HumanoidSim, width: int = 640, height: int = 480, distance: float = 2.8,
               azimuth: float = 140.0, elevation: float = -15.0) -> np.ndarray:
    """An RGB image (height x width x 3, uint8) of the robot, the camera tracking its pelvis."""
    try:
        renderer = mujoco.Renderer(sim.model, height, width)
    except Exception as exc:
        raise SnapshotError(
            f"cannot create an offscreen OpenGL context ({type(exc).__name__}: {exc}); "
            "set MUJOCO_GL=egl (or osmesa) before the first 'import mujoco'"
        ) from None
    try:
        camera = mujoco.MjvCamera()
        camera.lookat[:] = sim.data.xpos[sim.g1.pelvis_body]
        camera.lookat[2] = max(0.3, float(camera.lookat[2]) - 0.1)
        camera.distance, camera.azimuth, camera.elevation = distance, azimuth, elevation
        renderer.update_scene(sim.data, camera=camera)
        image: np.ndarray = renderer.render().copy()
        return image
    finally:
        renderer.close()


def write_png(sim: HumanoidSim, path: Path, width: int = 640, height: int = 480) -> Path:
    """Render the current state to a PNG file; the path written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image

    image = render_rgb(sim, width, height)
    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(path, image)
    return path
