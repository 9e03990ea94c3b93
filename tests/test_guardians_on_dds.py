"""Guardian commands and incidents through a real guard node on DDS: every refusal seen from outside.

The guard runs without the simulator (it stays in BOOT, hardware HOLD): authentication does not need a
moving robot. Each command goes on ``guardian/command`` as a guardian's tool sends it; what the guard did
is read from ``guardian/result`` and ``safety_state``, incidents from ``incidents`` and the
``incidents/acknowledge`` service, as the department would.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rclpy
from cryptography.hazmat.primitives.asymmetric import ed25519
from ftrobot_msgs.msg import GuardianCommandResult, IncidentReport, SafetyState

from ftrobot_guard.guardians.guardian_commands import GuardianAction, sign_command
from ftrobot_guard.guardians.revocation_list import RevocationEntry, issue_revocation_list
from ftrobot_guard.incidents.incident_report import verify_incident
from ftrobot_guard.trust.certificates import CertificateVerifier, issue_guardian_certificate, save_certificate_pem
from ftrobot_guard.trust.keys import load_private_key
from ftrobot_guard.trust.signed_fields import message_fields
from guard_harness import (
    GUARDIAN_ID,
    MAINTAINER_ID,
    OFFICER_ID,
    SECOND_GUARDIAN_ID,
    Guardians,
    GuardStack,
    ros_environment,
)
from ros_fixtures import wait_until

pytestmark = pytest.mark.clause("2.7", "6.3")


def _estopped(stack: GuardStack, guardians: Guardians) -> GuardianCommandResult:
    result = guardians.command(GuardianAction.ESTOP)
    stack.wait_mode("ESTOP", 10.0)
    return result


def test_every_refusal_reason_is_seen_from_outside(guard_stack: Callable[..., GuardStack], tmp_path: Path) -> None:
    stack = guard_stack(with_sim=False)
    guardians = Guardians(stack)
    assert _estopped(stack, guardians).accepted
    now = dt.datetime.now(dt.UTC)
    valid = guardians.fields(GuardianAction.RESET)
    forged = bytearray(sign_command(guardians.key(GUARDIAN_ID), valid))
    forged[5] ^= 0x40
    cases: list[tuple[str, dict[str, Any], bytes | None, str | None]] = [
        ("FORGED", valid, bytes(forged), None),
        ("FORGED", guardians.fields(GuardianAction.RESET), None, OFFICER_ID),          # signed by another key
        ("STALE", guardians.fields(GuardianAction.RESET, issued=now - dt.timedelta(seconds=60)), None, None),
        ("FUTURE", guardians.fields(GuardianAction.RESET, issued=now + dt.timedelta(seconds=60)), None, None),
        ("WRONG_ROBOT", guardians.fields(GuardianAction.RESET, robot="440304-RB-2026-000124-6"), None, None),
        ("UNKNOWN_GUARDIAN", guardians.fields(GuardianAction.RESET, guardian_id="G-440304-9999"), None, GUARDIAN_ID),
        ("ROLE_NOT_ALLOWED", guardians.fields(GuardianAction.RESET, OFFICER_ID), None, None),
        ("ROLE_NOT_ALLOWED", guardians.fields(GuardianAction.HANDOVER, MAINTAINER_ID, argument=GUARDIAN_ID), None,
         None),
        ("MALFORMED", guardians.fields(GuardianAction.RESET, nonce=b"short"), None, None),
    ]
    for refusal, fields, signature, signer in cases:
        result = guardians.send(fields, signature, signer)
        assert (result.accepted, result.obeyed, result.refusal) == (False, False, refusal), (refusal, result)
        assert stack.observer.mode() == "ESTOP" and stack.observer.states[-1].latched
    # a valid RESET once, then its replay
    result = guardians.send(valid)
    assert result.accepted and result.obeyed, result
    stack.wait_mode("BOOT", 10.0)          # no simulator: the self-check has not passed, so BOOT, not NORMAL
    _estopped(stack, guardians)
    replay = guardians.send(valid)
    assert (replay.accepted, replay.refusal) == (False, "REPLAYED") and stack.observer.mode() == "ESTOP"

    # a guardian certificate outside its validity (not valid before tomorrow), registered while the guard runs
    department = stack.files.department
    expired_key = ed25519.Ed25519PrivateKey.generate()
    cert = issue_guardian_certificate(department.cert, department.key, expired_key.public_key(), "G-440304-0042",
                                      "New Guard", "operator", "Futian District Government Services Center",
                                      now + dt.timedelta(days=1), now + dt.timedelta(days=30))
    save_certificate_pem(stack.files.guardian_directory / "G-440304-0042.pem", cert)
    fields = guardians.fields(GuardianAction.RESET, guardian_id="G-440304-0042")
    wait_until(lambda: guardians.send(dict(fields, nonce=os.urandom(16)),
                                      sign_command(expired_key, dict(fields))).refusal != "UNKNOWN_GUARDIAN",
               10.0, "the new certificate picked up")
    fields = guardians.fields(GuardianAction.RESET, guardian_id="G-440304-0042")
    assert guardians.send(fields, sign_command(expired_key, fields)).refusal == "CERTIFICATE_INVALID"


def test_a_revoked_guardian_is_refused_without_a_restart(guard_stack: Callable[..., GuardStack],
                                                         tmp_path: Path) -> None:
    revocations = tmp_path / "revoked.json"
    stack = guard_stack(with_sim=False, guardian_revocation_file=str(revocations), guardian_refresh_period=0.2)
    guardians = Guardians(stack)
    _estopped(stack, guardians)
    department = stack.files.department
    revocations.write_bytes(issue_revocation_list(
        department.cert, department.key, [RevocationEntry(GUARDIAN_ID, "", dt.datetime.now(dt.UTC), "key lost")], 1,
        dt.datetime.now(dt.UTC)))
    # RESUME changes nothing in ESTOP: it shows when the list is in force
    wait_until(lambda: guardians.command(GuardianAction.RESUME).refusal == "REVOKED", 10.0, "the revocation in force")
    result = guardians.command(GuardianAction.RESET)
    assert (result.accepted, result.refusal) == (False, "REVOKED") and stack.observer.mode() == "ESTOP"
    assert guardians.command(GuardianAction.RESET, SECOND_GUARDIAN_ID).accepted   # another guardian still may


@pytest.mark.clause("6.4c")
def test_a_stop_is_obeyed_even_unauthenticated_and_flagged(guard_stack: Callable[..., GuardStack]) -> None:
    stack = guard_stack(with_sim=False)
    guardians = Guardians(stack)
    stranger = ed25519.Ed25519PrivateKey.generate()
    fields = guardians.fields(GuardianAction.POWER_DOWN, guardian_id="nobody")
    result = guardians.send(fields, sign_command(stranger, fields))
    assert result.obeyed and not result.accepted and result.refusal == "UNKNOWN_GUARDIAN"
    stack.wait_mode("POWER_DOWN", 10.0)
    # no guardian answers for it: the department gets an incident, as for a stop the robot made by itself
    wait_until(lambda: any(i.source == "unauthenticated:nobody" for i in list(guardians.incidents)), 10.0,
               "an incident for the unauthenticated stop")
    incident = next(i for i in list(guardians.incidents) if i.source == "unauthenticated:nobody")
    assert "UNKNOWN_GUARDIAN" in incident.what_happened and incident.mode_after == SafetyState.MODE_POWER_DOWN, incident
    garbage = guardians.fields(GuardianAction.ESTOP, nonce=b"\x00" * 3)
    result = guardians.send(garbage, b"\x00" * 3)
    assert result.obeyed and not result.accepted and result.refusal == "MALFORMED"
    stack.wait_mode("ESTOP", 10.0)
    # leaving it still needs an authenticated guardian
    assert not guardians.send(guardians.fields(GuardianAction.RESUME), b"\x01" * 64).obeyed
    assert stack.observer.mode() == "ESTOP"


@pytest.mark.clause("6.1c")
def test_duty_changes_only_by_a_signed_handover_and_survives_a_restart(
        guard_stack: Callable[..., GuardStack]) -> None:
    stack = guard_stack(with_sim=False)
    guardians = Guardians(stack)
    wait_until(lambda: bool(stack.observer.states) and stack.observer.states[-1].guardian_on_duty == GUARDIAN_ID,
               10.0, "the first guardian on duty in safety_state")
    result = guardians.command(GuardianAction.HANDOVER, OFFICER_ID, argument=GUARDIAN_ID)
    assert result.refusal == "ROLE_NOT_ALLOWED"
    result = guardians.command(GuardianAction.HANDOVER, SECOND_GUARDIAN_ID, argument="G-440304-0001")
    assert result.accepted and not result.obeyed and result.refusal == "HANDOVER_REFUSED"   # wrong claim
    result = guardians.command(GuardianAction.HANDOVER, SECOND_GUARDIAN_ID, argument=GUARDIAN_ID)
    assert result.accepted and result.obeyed, result
    wait_until(lambda: stack.observer.states[-1].guardian_on_duty == SECOND_GUARDIAN_ID, 10.0, "the handover")
    result = guardians.command(GuardianAction.RESUME)
    assert result.accepted and not result.obeyed and result.refusal == "NOTHING_TO_RESUME"
    # an incident names the guardian on duty; a restart keeps the roster
    _estopped(stack, guardians)
    wait_until(lambda: bool(guardians.incidents), 10.0, "the incident report")
    assert guardians.incidents[-1].guardian_on_duty == SECOND_GUARDIAN_ID
    files, namespace = stack.files, stack.namespace
    stack.close()
    stack = guard_stack(with_sim=False, files=files, namespace=namespace)
    wait_until(lambda: bool(stack.observer.states) and
               stack.observer.states[-1].guardian_on_duty == SECOND_GUARDIAN_ID, 10.0, "the roster after a restart")


@pytest.mark.clause("4.5", "6.4c")
def test_incidents_survive_a_restart_and_are_acknowledged_exactly_once(
        guard_stack: Callable[..., GuardStack]) -> None:
    stack = guard_stack(with_sim=False)
    guardians = Guardians(stack)
    _estopped(stack, guardians)
    wait_until(lambda: bool(guardians.incidents), 10.0, "the incident report")
    report = guardians.incidents[-1]
    fields = message_fields(report)
    verified = verify_incident(fields, bytes(report.signature), CertificateVerifier([stack.files.department.cert]),
                               dt.datetime.now(dt.UTC))
    assert verified is not None
    assert report.mode_after == 5 and not report.acknowledged and report.guardian_on_duty == GUARDIAN_ID
    assert "+86 755" in report.contact and report.identity_number == stack.files.identity_number
    wait_until(lambda: stack.observer.states[-1].open_incidents == 1, 10.0, "one open incident in safety_state")
    incident_id = report.incident_id

    # the guard restarts: the incident is still open and published again
    files, namespace = stack.files, stack.namespace
    stack.close()
    stack = guard_stack(with_sim=False, files=files, namespace=namespace)
    guardians = Guardians(stack)
    wait_until(lambda: any(r.incident_id == incident_id for r in list(guardians.incidents)), 15.0,
               "the open incident after the restart")
    # a guardian (operator) may not acknowledge; the officer may, once
    refused = guardians.acknowledge(incident_id, GUARDIAN_ID)
    assert not refused.accepted and "ROLE_NOT_ALLOWED" in refused.message
    first = guardians.acknowledge(incident_id)
    assert first.accepted and "accepted" in first.message
    again = guardians.acknowledge(incident_id)
    assert again.accepted and "already acknowledged" in again.message
    unknown = guardians.acknowledge("440304-RB-2026-000123-8/20260101T000000Z/00000000")
    assert not unknown.accepted
    wait_until(lambda: any(r.incident_id == incident_id and r.acknowledged for r in list(guardians.incidents)),
               10.0, "the acknowledged report")
    closing = [r for r in guardians.incidents if r.incident_id == incident_id and r.acknowledged][-1]
    assert closing.acknowledged_by == OFFICER_ID
    wait_until(lambda: stack.observer.states[-1].open_incidents == 0, 10.0, "no open incident")


def test_the_guardian_cli_stops_and_says_what_the_robot_did(guard_stack: Callable[..., GuardStack]) -> None:
    stack = guard_stack(with_sim=False)
    env = ros_environment()
    guardian = stack.files.guardians[GUARDIAN_ID]

    def cli(*args: str, key: Path = guardian.private_key) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ftrobot_guard.cli.main", "guardian", *args, "--robot",
                               stack.namespace, "--id", stack.files.identity_number, "--key", str(key),
                               "--guardian-id", GUARDIAN_ID, "--timeout", "15"],
                              env=env, capture_output=True, text=True, timeout=60)

    # the robot is found by its namespace; without a heartbeat process here, the CLI is told the identity
    done = cli("estop", "--reason", "test")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ESTOP" in done.stdout and "accepted" in done.stdout
    stack.wait_mode("ESTOP", 10.0)
    other = stack.files.guardians[OFFICER_ID].private_key   # the officer's key under the guardian's id: forged
    forged = cli("reset", key=other)
    assert forged.returncode == 1, forged.stdout + forged.stderr
    assert "REFUSED (FORGED)" in forged.stdout
    assert stack.observer.mode() == "ESTOP"


@pytest.mark.clause("4.5", "6.4c")
def test_the_department_gets_every_incident_even_when_it_starts_late_or_restarts(
        guard_stack: Callable[..., GuardStack]) -> None:
    """The monitor is absent when the incident opens, then restarts: transient-local delivery and the
    re-sending bring the open incident each time; the officer's acknowledgement closes it there."""
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from ftrobot_guard.nodes.department_monitor_node import DepartmentMonitorNode
    from guard_harness import _Spin
    from ros_fixtures import session_domain_id

    stack = guard_stack(with_sim=False)
    guardians = Guardians(stack)
    _estopped(stack, guardians)
    wait_until(lambda: bool(guardians.incidents), 10.0, "the incident report")
    incident_id = guardians.incidents[-1].incident_id

    def start_monitor() -> tuple[Context, DepartmentMonitorNode, _Spin]:
        context = Context()
        rclpy.init(context=context, domain_id=session_domain_id())
        node = DepartmentMonitorNode(context=context, parameter_overrides=[
            Parameter("trusted_ca_files", value=[str(stack.files.department.ca_certificate)]),
            Parameter("discovery_period", value=0.2)])
        return context, node, _Spin(context, node)

    def open_at(monitor: DepartmentMonitorNode) -> list[str]:
        return [i.fields.incident_id for i in monitor.open_incidents()]

    for attempt in ("late", "restarted"):
        context, monitor, spin = start_monitor()
        try:
            wait_until(lambda m=monitor: incident_id in open_at(m), 15.0, f"the open incident at a {attempt} monitor")
            if attempt == "restarted":
                assert guardians.acknowledge(incident_id).accepted
                wait_until(lambda m=monitor: not open_at(m), 15.0, "the incident closed at the monitor")
        finally:
            spin.stop()
            monitor.destroy_node()
            rclpy.shutdown(context=context)


@pytest.mark.clause("6.7c", "2.7")
def test_refusals_and_incidents_are_in_the_black_box_with_the_guardian_on_duty(
        guard_stack: Callable[..., GuardStack], tmp_path: Path) -> None:
    from rclpy.context import Context
    from rclpy.parameter import Parameter
    from rclpy.serialization import deserialize_message

    from blackbox_testkit import make_keys
    from ftrobot_guard.blackbox.export import ExportOutcome, iter_entries, make_filter
    from ftrobot_guard.nodes.recorder_node import RecorderNode
    from guard_harness import _Spin
    from ros_fixtures import session_domain_id

    stack = guard_stack(with_sim=False)
    keys = make_keys()
    paths = keys.save(tmp_path / "recorder_keys")
    context = Context()
    rclpy.init(context=context, domain_id=session_domain_id())
    recorder = RecorderNode(context=context, namespace=stack.namespace, parameter_overrides=[
        Parameter(name, value=value) for name, value in {
            "log_directory": str(tmp_path / "log"), "identity_number": keys.robot_id,
            "signing_key_file": str(paths["robot_key"]), "auditor_public_key_files": [str(paths["auditor_pub"])],
            "topics": ["guardian/command|ftrobot_msgs/msg/GuardianCommand|event",
                       "guardian/result|ftrobot_msgs/msg/GuardianCommandResult|event",
                       "incidents|ftrobot_msgs/msg/IncidentReport|incident|0|latched"],
            "guardian_on_duty": "nobody-yet", "fsync_interval_ms": 20}.items()])
    spin = _Spin(context, recorder)
    try:
        guardians = Guardians(stack)
        wait_until(lambda: recorder._recorder.guardian == GUARDIAN_ID, 10.0, "the recorder told who is on duty")
        assert _estopped(stack, guardians).accepted
        valid = guardians.fields(GuardianAction.RESET)
        assert guardians.send(valid, b"\x07" * 64).refusal == "FORGED"
        assert guardians.send(valid).obeyed
        assert guardians.send(valid).refusal == "REPLAYED"
        wait_until(lambda: bool(guardians.incidents), 10.0, "the incident report")
        wait_until(lambda: recorder.messages_received >= 8, 10.0, "the recorder to take 3 commands, 4 results, "
                   "1 incident")
    finally:
        spin.stop()
        recorder.destroy_node()   # drains and closes the log
        rclpy.shutdown(context=context)
    key = load_private_key(paths["auditor_key"], "x25519")
    outcome = ExportOutcome()
    entries = [i.entry for i in iter_entries(tmp_path / "log", key, make_filter(None, None, None), outcome)]  # type: ignore[arg-type]
    assert not outcome.problems
    results = [deserialize_message(e.data, GuardianCommandResult) for e in entries
               if e.topic.lstrip("/").endswith("guardian/result")]
    assert [r.refusal for r in results if not r.accepted] == ["FORGED", "REPLAYED"]
    reports = [deserialize_message(e.data, IncidentReport) for e in entries if e.topic.lstrip("/").endswith("incidents")]
    assert reports and reports[0].mode_after == 5 and reports[0].guardian_on_duty == GUARDIAN_ID
    assert {e.guardian for e in entries if e.topic.lstrip("/").endswith("guardian/result")} == {GUARDIAN_ID}
