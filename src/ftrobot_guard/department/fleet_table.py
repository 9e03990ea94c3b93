"""The department's live terminal table of robots (used by `ftrobot dept monitor` and the demo).

INCIDENTS is the number of open incidents the department holds for the robot, followed by the
robot's own count (from its latest heartbeat) when the two differ, e.g. a report not received yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from ftrobot_guard.department.fleet_monitor import Alert, RobotRow

_COLUMNS = ("IDENTITY NUMBER", "NAME", "MODE", "LAST SEEN", "SIGNATURE", "INCIDENTS", "ALERTS")


def _age(age_s: float | None) -> str:
    if age_s is None:
        return "never"
    return f"{age_s:5.1f} s ago"


def _incidents(row: RobotRow) -> str:
    """Open incidents the department holds; the robot's own count (its heartbeat) when it differs."""
    if row.heartbeat_open_incidents != row.open_incidents:
        return f"{row.open_incidents} (robot: {row.heartbeat_open_incidents})"
    return str(row.open_incidents)


def render_table(rows: Sequence[RobotRow]) -> str:
    """A fixed-width table, one robot per line, sorted by identity number."""
    lines = [
        (
            row.identity_number,
            row.robot_name,
            row.safety_mode,
            _age(row.last_seen_age_s),
            row.signature_state.value,
            _incidents(row),
            ", ".join(kind.name for kind in row.active_alerts) or "-",
        )
        for row in sorted(rows, key=lambda r: r.identity_number)
    ]
    widths = [max(len(title), *(len(line[i]) for line in lines)) if lines else len(title)
              for i, title in enumerate(_COLUMNS)]
    out = ["  ".join(title.ljust(widths[i]) for i, title in enumerate(_COLUMNS)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines]
    if not lines:
        out.append("(no robot heard yet)")
    return "\n".join(out)


def render_alert(alert: Alert) -> str:
    verb = "ALERT  " if alert.raised else "cleared"
    who = f"{alert.identity_number} ({alert.robot_name})" if alert.robot_name else alert.identity_number
    return f"{verb} {alert.kind.name:<20} {who}: {alert.detail}"
