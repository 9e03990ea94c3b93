"""ament_python package ftrobot_guard (sources under src/, as fixed by the project's layout)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "ftrobot_guard"

setup(
    name=PACKAGE,
    version="0.1.0",
    package_dir={"": "src"},
    packages=find_packages("src", include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/envelope", glob("config/envelope/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="ftrobot_guard maintainers",
    maintainer_email="maintainers@ftrobot-guard.invalid",
    description="Robot-side safety and compliance layer for humanoid robot employees.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "ftrobot = ftrobot_guard.cli.main:main",
            "heartbeat = ftrobot_guard.nodes.heartbeat_node:main",
            "department_monitor = ftrobot_guard.nodes.department_monitor_node:main",
            "recorder = ftrobot_guard.nodes.recorder_node:main",
            "humanoid_sim = ftrobot_guard.nodes.humanoid_sim_node:main",
            "guard = ftrobot_guard.nodes.guard_node:main",
        ],
    },
)
