"""DutyRoster: the guardian on duty, handed over only by whoever holds duty, surviving a restart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ftrobot_guard.guardians.duty_roster import DutyRoster, DutyRosterError, HandoverRefused

pytestmark = pytest.mark.clause("2.7")

AT = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def test_handover_needs_the_guardian_on_duty_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "duty.json"
    roster = DutyRoster(path, "G-1")
    assert (roster.on_duty, roster.since, roster.previous) == ("G-1", None, "")
    with pytest.raises(HandoverRefused, match="G-1 is on duty"):
        roster.handover("G-2", "G-3", AT)
    assert roster.handover("G-2", "G-1", AT) == "G-2"
    assert (roster.on_duty, roster.since, roster.previous) == ("G-2", AT, "G-1")
    restarted = DutyRoster(path, "G-1")  # the persisted roster wins over the configured initial guardian
    assert (restarted.on_duty, restarted.since, restarted.previous) == ("G-2", AT, "G-1")
    with pytest.raises(HandoverRefused, match="on duty already"):
        restarted.handover("G-2", "G-2", AT)
    with pytest.raises(HandoverRefused, match="not a guardian id"):
        restarted.handover("G 3\n", "G-2", AT)
    assert DutyRoster(path, "G-9").on_duty == "G-2"


def test_an_unsaved_handover_changes_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    roster = DutyRoster(blocker / "duty.json", "G-1")
    with pytest.raises(HandoverRefused, match="not saved"):
        roster.handover("G-2", "G-1", AT)
    assert roster.on_duty == "G-1"


def test_a_corrupt_roster_is_an_error_and_bad_arguments_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "duty.json"
    path.write_text('{"on_duty": "G 1"}')
    with pytest.raises(DutyRosterError, match="ill-formed"):
        DutyRoster(path, "G-1")
    path.write_text("not json")
    with pytest.raises(DutyRosterError, match="ill-formed"):
        DutyRoster(path, "G-1")
    with pytest.raises(ValueError):
        DutyRoster(None, "")
    with pytest.raises(ValueError, match="timezone"):
        DutyRoster(None, "G-1").handover("G-2", "G-1", AT.replace(tzinfo=None))
