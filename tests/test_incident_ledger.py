"""The robot's incident ledger (incidents/incident_ledger.py): what opens an incident, durability, acknowledgement."""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.incidents.incident_ledger import (
    ACKNOWLEDGED_FILE,
    AckOutcome,
    IncidentLedger,
    qualifies,
)
from ftrobot_guard.incidents.incident_report import Incident, incident_fields_mapping
from ftrobot_guard.safety.modes import SafetyMode

NUMBER = "440304-RB-2026-000123-8"
WHEN = dt.datetime(2026, 3, 2, 8, 15, 2, 250_000, tzinfo=dt.UTC)
BOOT, NORMAL, REDUCED, SAFE_STOP, POWER_DOWN, ESTOP, PAUSED = (int(m) for m in SafetyMode)
CONTACTS = {"G-0001": "+86 755 0000 0001 (duty desk)"}


def ledger(directory: Path | None, **kwargs: Any) -> IncidentLedger:
    return IncidentLedger(directory, NUMBER, "Xiao Fu", "Futian Data Bureau", "Futian service hall, guiding",
                          lambda guardian: CONTACTS.get(guardian, ""), **kwargs)


def stop(book: IncidentLedger, before: int, after: int, source: str = "supervisor", seconds: float = 0.0,
         cause: str = "joint_limit", measures: str = "hold posture, power kept", severity: int = 2) -> Incident | None:
    return book.on_transition(WHEN + dt.timedelta(seconds=seconds), before, after, source, cause, [cause], measures,
                              "G-0001", severity)


def incident_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("incident-*.json"))


@pytest.mark.clause("4.5", "6.4c")
@pytest.mark.parametrize("before, after, source, opens", [
    (NORMAL, SAFE_STOP, "supervisor", True),
    (NORMAL, SAFE_STOP, "detector", True),
    (REDUCED, POWER_DOWN, "supervisor", True),
    (BOOT, SAFE_STOP, "boot", True),
    (PAUSED, SAFE_STOP, "supervisor", True),
    (NORMAL, ESTOP, "estop", True),
    (NORMAL, ESTOP, "guardian:G-0001", True),
    (PAUSED, ESTOP, "guardian:G-0001", True),
    (NORMAL, SAFE_STOP, "guardian:G-0001", False),
    (NORMAL, POWER_DOWN, "guardian:G-0001", False),
    (NORMAL, REDUCED, "supervisor", False),
    (NORMAL, PAUSED, "guardian:G-0001", False),
    (SAFE_STOP, NORMAL, "guardian:G-0001", False),
    (BOOT, NORMAL, "boot", False),
])
def test_which_transitions_open_an_incident(before: int, after: int, source: str, opens: bool) -> None:
    book = ledger(None)
    incident = stop(book, before, after, source)
    assert (incident is not None) is opens is qualifies(after, source)
    assert book.open_count == int(opens)
    if incident is not None:
        assert (incident.mode_before, incident.mode_after, incident.source) == (before, after, source)
        assert incident.what_happened == f"{SafetyMode(after).name} from {SafetyMode(before).name} by {source}: joint_limit"
        assert (incident.guardian_on_duty, incident.contact) == ("G-0001", CONTACTS["G-0001"])
        assert incident.anomaly_kinds == ("joint_limit",) and incident.opened_at == WHEN
        assert (incident.identity_number, incident.robot_name, incident.department) == (
            NUMBER, "Xiao Fu", "Futian Data Bureau")
        assert incident.scope == "Futian service hall, guiding" and not incident.acknowledged


def test_incident_ids_name_the_robot_the_opening_time_and_a_random_part() -> None:
    book = ledger(None)
    ids = set()
    for index in range(20):
        incident = stop(book, NORMAL, ESTOP, "estop")
        assert incident is not None
        ids.add(incident.incident_id)
        stop(book, ESTOP, NORMAL, "guardian:G-0001")
        assert re.fullmatch(rf"{NUMBER}/20260302T081502Z/[0-9a-f]{{8}}", incident.incident_id), index
    assert len(ids) == 20 == book.open_count


@pytest.mark.clause("4.5", "6.4c")
def test_one_incident_per_stop_episode_escalations_append_to_its_measures() -> None:
    book = ledger(None)
    first = stop(book, NORMAL, SAFE_STOP, "supervisor", measures="hold posture", severity=2)
    assert first is not None
    escalated = stop(book, SAFE_STOP, POWER_DOWN, "supervisor", seconds=3, cause="unresolved",
                     measures="lowered to rest, power off", severity=3)
    assert escalated is not None and escalated.incident_id == first.incident_id
    assert escalated.measures_taken.startswith("hold posture | then 08:15:05Z POWER_DOWN by supervisor: unresolved")
    assert escalated.measures_taken.endswith("lowered to rest, power off")
    assert escalated.severity == 3 and escalated.anomaly_kinds == ("joint_limit", "unresolved")
    assert (escalated.mode_before, escalated.mode_after, escalated.opened_at) == (NORMAL, SAFE_STOP, WHEN)
    estop = stop(book, POWER_DOWN, ESTOP, "estop", seconds=4, severity=1)
    assert estop is not None and estop.incident_id == first.incident_id and estop.severity == 3
    assert stop(book, ESTOP, SAFE_STOP, "guardian:G-0001", seconds=5) is None  # a guardian's step: nothing new
    assert book.open_count == 1 and book.open_incidents == [estop]
    stop(book, SAFE_STOP, NORMAL, "guardian:G-0001", seconds=6)  # the episode ends
    second = stop(book, NORMAL, SAFE_STOP, seconds=7)
    assert second is not None and second.incident_id != first.incident_id and book.open_count == 2


def test_a_guardian_stop_opens_nothing_but_an_estop_in_it_does_and_an_acknowledged_episode_reopens() -> None:
    book = ledger(None)
    assert stop(book, NORMAL, SAFE_STOP, "guardian:G-0001") is None
    estop = stop(book, SAFE_STOP, ESTOP, "estop", seconds=1)
    assert estop is not None and estop.mode_before == SAFE_STOP
    assert book.acknowledge(estop.incident_id, "G-0002", WHEN) is AckOutcome.ACCEPTED
    again = stop(book, ESTOP, ESTOP, "estop", seconds=2)  # pressed again after the acknowledgement
    assert again is not None and again.incident_id != estop.incident_id and book.open_count == 1


@pytest.mark.clause("4.5")
def test_each_incident_is_on_disk_when_on_transition_returns_and_a_restart_keeps_it(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    first = stop(book, NORMAL, SAFE_STOP)
    assert first is not None and len(incident_files(tmp_path)) == 1
    second = stop(book, SAFE_STOP, NORMAL, "guardian:G-0001") or stop(book, NORMAL, ESTOP, "estop", seconds=2)
    assert second is not None and len(incident_files(tmp_path)) == 2
    escalated = stop(book, ESTOP, POWER_DOWN, "supervisor", seconds=3)
    assert escalated is not None
    restarted = ledger(tmp_path)
    assert restarted.open_incidents == [first, escalated] and restarted.open_count == 2
    assert restarted.problems == []
    assert [i.incident_id for i in restarted.due(0.0)] == [first.incident_id, escalated.incident_id]
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.clause("4.5", "6.4c")
def test_acknowledgement_is_exactly_once_also_across_a_restart(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    incident = stop(book, NORMAL, POWER_DOWN)
    assert incident is not None
    assert book.acknowledge("no-such/incident/00000000", "G-0002", WHEN) is AckOutcome.UNKNOWN
    assert book.acknowledge(incident.incident_id, "G-0002", WHEN + dt.timedelta(minutes=1)) is AckOutcome.ACCEPTED
    assert book.acknowledge(incident.incident_id, "G-0003", WHEN) is AckOutcome.ALREADY_ACKNOWLEDGED
    assert book.open_count == 0 and book.is_acknowledged(incident.incident_id)
    final = book.due(100.0)
    assert [(i.incident_id, i.acknowledged, i.acknowledged_by, i.acknowledged_at) for i in final] == [
        (incident.incident_id, True, "G-0002", WHEN + dt.timedelta(minutes=1))]
    assert book.due(200.0) == [] and incident_files(tmp_path) == []
    restarted = ledger(tmp_path)
    assert restarted.acknowledge(incident.incident_id, "G-0002", WHEN) is AckOutcome.ALREADY_ACKNOWLEDGED
    assert restarted.due(0.0) == [] and restarted.open_count == 0


def test_a_restart_between_acknowledgement_and_its_last_publication_publishes_it_then(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    incident = stop(book, NORMAL, ESTOP, "estop")
    assert incident is not None
    book.acknowledge(incident.incident_id, "G-0002", WHEN)
    restarted = ledger(tmp_path)
    assert restarted.open_count == 0
    assert restarted.acknowledge(incident.incident_id, "G-0002", WHEN) is AckOutcome.ALREADY_ACKNOWLEDGED
    assert [(i.incident_id, i.acknowledged) for i in restarted.due(0.0)] == [(incident.incident_id, True)]
    assert restarted.due(10.0) == [] and incident_files(tmp_path) == []


@pytest.mark.clause("6.4c")
def test_republication_every_period_until_acknowledged_then_once_more() -> None:
    book = ledger(None, republish_period=2.5)
    assert book.due(0.0) == []
    incident = stop(book, NORMAL, SAFE_STOP)
    assert incident is not None
    assert book.due(10.0) == [incident]  # at once
    assert book.due(12.4) == []
    assert book.due(12.5) == [incident]
    escalated = stop(book, SAFE_STOP, POWER_DOWN, seconds=1)
    assert book.due(12.6) == [escalated]  # a change is published at once
    assert book.due(15.0) == [] and book.due(15.1) == [escalated]
    book.acknowledge(incident.incident_id, "G-0002", WHEN)
    last = book.due(15.2)
    assert len(last) == 1 and last[0].acknowledged and last[0].incident_id == incident.incident_id
    assert all(book.due(t) == [] for t in (20.0, 100.0, 1000.0))


def test_default_period_is_five_seconds_and_bad_periods_are_refused() -> None:
    book = ledger(None)
    incident = stop(book, NORMAL, ESTOP, "estop")
    assert book.due(0.0) == [incident] and book.due(4.99) == [] and book.due(5.0) == [incident]
    for period in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="republish_period"):
            ledger(None, republish_period=period)


@pytest.mark.clause("4.5")
def test_a_corrupt_incident_file_is_kept_aside_and_reported(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    good = stop(book, NORMAL, SAFE_STOP)
    bad = stop(book, SAFE_STOP, NORMAL, "guardian:G-0001") or stop(book, NORMAL, ESTOP, "estop", seconds=1)
    assert good is not None and bad is not None
    bad_file = next(p for p in incident_files(tmp_path) if bad.incident_id.rsplit("/", 1)[1] in p.name)
    bad_file.write_bytes(bad_file.read_bytes()[:40])
    restarted = ledger(tmp_path)
    assert restarted.open_incidents == [good]
    assert len(restarted.problems) == 1 and bad_file.name in restarted.problems[0]
    assert "unreadable" in restarted.problems[0] and restarted.take_problems() == restarted.problems
    assert restarted.take_problems() == []
    kept = bad_file.with_name(bad_file.name + ".corrupt")
    assert kept.exists() and not bad_file.exists()
    assert ledger(tmp_path).problems == []  # reported once: the corrupt file is not read again


@pytest.mark.parametrize("damage", [
    lambda doc: {**doc, "format": 2},
    lambda doc: {**doc, "incident": {**doc["incident"], "severity": "high"}},
    lambda doc: {**doc, "incident": {**doc["incident"], "identity_number": "440304-RB-2026-000124-6"}},
    lambda doc: {**doc, "incident": {**doc["incident"], "opened_at": "yesterday"}},
    lambda doc: {**doc, "incident": {k: v for k, v in doc["incident"].items() if k != "scope"}},
])
def test_incident_files_with_wrong_content_are_kept_aside(tmp_path: Path, damage: Any) -> None:
    stop(ledger(tmp_path), NORMAL, SAFE_STOP)
    (path,) = incident_files(tmp_path)
    path.write_text(json.dumps(damage(json.loads(path.read_text()))))
    restarted = ledger(tmp_path)
    assert restarted.open_count == 0 and len(restarted.problems) == 1
    assert path.with_name(path.name + ".corrupt").exists()


def test_a_corrupt_acknowledged_file_is_kept_aside_and_reported(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    incident = stop(book, NORMAL, SAFE_STOP)
    assert incident is not None
    book.acknowledge(incident.incident_id, "G-0002", WHEN)
    (tmp_path / ACKNOWLEDGED_FILE).write_text("{not json")
    restarted = ledger(tmp_path)
    assert len(restarted.problems) == 1 and ACKNOWLEDGED_FILE in restarted.problems[0]
    assert (tmp_path / (ACKNOWLEDGED_FILE + ".corrupt")).exists()
    # the incident's own file still says it is acknowledged: it stays so
    assert restarted.acknowledge(incident.incident_id, "G-0002", WHEN) is AckOutcome.ALREADY_ACKNOWLEDGED
    assert json.loads((tmp_path / ACKNOWLEDGED_FILE).read_text())["acknowledged"] == [incident.incident_id]


def test_a_failed_write_keeps_the_incident_in_memory_and_is_reported(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    book = ledger(not_a_directory)
    incident = stop(book, NORMAL, ESTOP, "estop")
    assert incident is not None and book.open_incidents == [incident] and book.due(0.0) == [incident]
    assert len(book.problems) == 1 and "kept in memory only" in book.problems[0]


def test_a_failing_contact_directory_does_not_cost_the_incident() -> None:
    def broken(guardian: str) -> str:
        raise KeyError(guardian)

    book = IncidentLedger(None, NUMBER, "Xiao Fu", "Futian Data Bureau", "hall", broken)
    incident = stop(book, NORMAL, ESTOP, "estop")
    assert incident is not None and incident.contact == "" and "G-0001" in book.problems[0]


def test_bad_arguments_are_refused() -> None:
    book = ledger(None)
    with pytest.raises(ValueError, match="mode_after"):
        stop(book, NORMAL, 7)
    with pytest.raises(ValueError, match="timezone-aware"):
        book.on_transition(dt.datetime(2026, 3, 2), NORMAL, ESTOP, "estop", "", [], "", "", 1)  # naive on purpose
    with pytest.raises(ValueError, match="severity"):
        stop(book, NORMAL, ESTOP, "estop", severity=256)
    with pytest.raises(ValueError, match="identity_number"):
        IncidentLedger(None, "a/b", "n", "d", "s", str)


def test_an_incident_becomes_the_report_fields_with_the_certificate() -> None:
    book = ledger(None)
    incident = stop(book, NORMAL, ESTOP, "estop")
    assert incident is not None
    report = incident.report_fields(b"DER")
    assert report.certificate == b"DER" and report.incident_id == incident.incident_id
    mapping = incident_fields_mapping(report, WHEN)
    assert mapping["acknowledged_at"] == {"sec": 0, "nanosec": 0} and mapping["anomaly_kinds"] == ["joint_limit"]


# -- property: random transition sequences with restarts and acknowledgements ---------------------

STOPS = {SAFE_STOP, POWER_DOWN, ESTOP}
SOURCES = ["supervisor", "detector", "estop", "guardian:G-0001", "boot"]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("to"), st.sampled_from([int(m) for m in SafetyMode]), st.sampled_from(SOURCES)),
        st.tuples(st.just("restart")),
        st.tuples(st.just("ack"), st.integers(0, 7)),
        st.tuples(st.just("publish"), st.floats(0.0, 12.0)),
    ),
    max_size=30,
)


@pytest.mark.clause("4.5", "6.4c")
@settings(max_examples=150, deadline=None)
@given(steps)
def test_every_qualifying_stop_opens_one_incident_none_is_lost_and_each_is_acknowledged_once(
    sequence: list[tuple[Any, ...]],
) -> None:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        book = ledger(directory)
        mode, episode, now = BOOT, None, 0.0
        opened: list[str] = []
        open_ids: set[str] = set()
        acknowledged: list[str] = []
        last_publications: list[str] = []  # acknowledged=True publications handed out
        published_at: dict[str, float] = {}

        def publish(at: float) -> None:
            for incident in book.due(at):
                if incident.acknowledged:
                    last_publications.append(incident.incident_id)
                else:
                    assert incident.incident_id in open_ids
                    previous = published_at.get(incident.incident_id)
                    assert previous is None or at - previous >= 5.0  # every 5 s, or at once when changed
                    published_at[incident.incident_id] = at

        for step in sequence:
            if step[0] == "to":
                _, after, source = step
                incident = stop(book, mode, after, source, seconds=len(opened))
                if mode not in STOPS or after not in STOPS:
                    episode = None
                if after in STOPS and (after == ESTOP or not source.startswith("guardian:")):
                    assert incident is not None
                    if episode is not None and episode in open_ids:
                        assert incident.incident_id == episode  # appended to the episode's incident
                        published_at.pop(episode, None)  # changed: due at once
                    else:
                        assert incident.incident_id not in opened  # a new one
                        opened.append(incident.incident_id)
                        open_ids.add(incident.incident_id)
                        episode = incident.incident_id
                else:
                    assert incident is None
                mode = after
            elif step[0] == "restart":
                book = ledger(directory)
                mode, episode = BOOT, None  # the process starts again in BOOT
                assert {i.incident_id for i in book.open_incidents} == open_ids  # none lost
                assert book.problems == []
                published_at.clear()
            elif step[0] == "ack" and open_ids:
                target = sorted(open_ids)[step[1] % len(open_ids)]
                assert book.acknowledge(target, "G-0002", WHEN) is AckOutcome.ACCEPTED
                assert book.acknowledge(target, "G-0002", WHEN) is AckOutcome.ALREADY_ACKNOWLEDGED
                open_ids.discard(target)
                acknowledged.append(target)
            elif step[0] == "publish":
                now += step[1]
                publish(now)
            assert book.open_count == len(open_ids)
        book = ledger(directory)
        assert {i.incident_id for i in book.open_incidents} == open_ids
        for incident_id in sorted(open_ids):
            assert book.acknowledge(incident_id, "G-0002", WHEN) is AckOutcome.ACCEPTED
            acknowledged.append(incident_id)
        open_ids.clear()
        publish(now + 1.0)
        publish(now + 100.0)
        assert sorted(acknowledged) == sorted(opened)  # every incident acknowledged, each once
        assert sorted(last_publications) == sorted(opened)  # and published acknowledged exactly once
        assert incident_files(directory) == [] and book.problems == []
        assert all(book.acknowledge(i, "G-0002", WHEN) is AckOutcome.ALREADY_ACKNOWLEDGED for i in opened)
