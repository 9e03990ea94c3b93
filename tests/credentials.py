"""Test credentials, generated per test in tmp_path (never committed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ftrobot_guard.trust.dev_credentials import DepartmentFiles, RobotFiles, make_department, make_robot
from ftrobot_guard.trust.identity import make_identity_number


@dataclass(frozen=True)
class Fleet:
    department: DepartmentFiles
    robot: RobotFiles
    forger: DepartmentFiles
    impostor: RobotFiles


def make_fleet(tmp: Path, serial: int = 123) -> Fleet:
    department = make_department(tmp / "department")
    number = make_identity_number("440304", 2026, serial)
    robot = make_robot(tmp / "robot", department, number, "Futian-Guide-01")
    forger = make_department(tmp / "forger", name="Not The Department")
    impostor = make_robot(tmp / "impostor", forger, number, "Futian-Guide-01")
    return Fleet(department, robot, forger, impostor)


def heartbeat_overrides(robot: RobotFiles, department: DepartmentFiles, **extra: object) -> dict[str, object]:
    values: dict[str, object] = {
        "identity_number": robot.identity_number,
        "robot_name": robot.robot_name,
        "department": robot.department,
        "private_key_file": str(robot.private_key),
        "certificate_file": str(robot.certificate),
        "department_ca_files": [str(department.ca_certificate)],
        "guardian_on_duty": "G-440304-0007",
    }
    values.update(extra)
    return values


def write_heartbeat_params(path: Path, fleet: Fleet, rate_hz: float = 5.0, watched: str = "") -> Path:
    """A heartbeat params file (rcl matching ``/**/heartbeat``) for ``fleet``'s robot; returns ``path``."""
    path.write_text(
        "/**/heartbeat:\n  ros__parameters:\n"
        f'    identity_number: "{fleet.robot.identity_number}"\n'
        f'    robot_name: "{fleet.robot.robot_name}"\n'
        f'    department: "{fleet.robot.department}"\n'
        f'    private_key_file: "{fleet.robot.private_key}"\n'
        f'    certificate_file: "{fleet.robot.certificate}"\n'
        f'    department_ca_files: ["{fleet.department.ca_certificate}"]\n'
        f"    rate_hz: {rate_hz}\n"
        '    guardian_on_duty: "G-440304-0007"\n'
        + (f'    watched_topics: ["{watched}"]\n' if watched else ""),
        encoding="utf-8",
    )
    return path
