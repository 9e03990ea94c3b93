"""`ftrobot log verify|export|stat|keygen` and `ftrobot decommission`: exit codes, reports, bad input."""

from __future__ import annotations

import json
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from blackbox_testkit import LogKeys, heads_from_log, make_keys, parse, rebuild, segments, write_log
from ftrobot_guard.blackbox.witnessed_heads import write_witnessed_heads
from ftrobot_guard.cli.main import main


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[Path, LogKeys, dict[str, Path]]:
    keys = make_keys()
    paths = keys.save(tmp_path / "keys")
    write_log(tmp_path / "log", keys, entries=120, robot_copy=True)
    return tmp_path / "log", keys, paths


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.clause("8.2")
def test_verify_clean_and_anchored(setup, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log, _keys, paths = setup
    heads = write_witnessed_heads(tmp_path / "heads.json", heads_from_log(log))
    code, out, err = run(["log", "verify", str(log), "--robot-pub", str(paths["robot_pub"]),
                          "--heads", str(heads)], capsys)
    assert code == 0, out + err
    assert "result: 0 errors, 0 warnings: OK" in out and "confirmed" in out


@pytest.mark.clause("5.1a", "8.2")
def test_verify_reports_tampering_with_exit_1(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    log, _keys, _paths = setup
    path = segments(log)[0]
    prefix, records, _ = parse(path)
    rebuild(path, prefix, [r.raw for i, r in enumerate(records) if i != 2])
    code, out, _ = run(["log", "verify", str(log), "--json"], capsys)
    assert code == 1
    findings = json.loads(out)["findings"]
    missing = [f for f in findings if f["diagnosis"] == "RECORD_MISSING"]
    assert missing and missing[0]["segment"] == path.name and missing[0]["sequence"] == records[2].sequence
    assert missing[0]["offset"] is not None


@pytest.mark.parametrize("argv, message", [
    (["log", "verify", "/nonexistent/log"], "no such log directory"),
    (["log", "verify", "{log}", "--heads", "/nonexistent/heads.json"], "no such file"),
    (["log", "verify", "{log}", "--robot-pub", "{keys}/auditor_x25519.pub.pem"], "expected an ed25519"),
    (["log", "export", "{log}", "--key", "{keys}/robot_ed25519.pem"], "expected an x25519"),
    (["log", "export", "{log}", "--key", "{keys}/auditor_x25519.pem", "--since", "yesterday"], "ISO 8601"),
    (["log", "stat", "{log}", "--budget", "lots"], "size"),
    (["log", "keygen", "--out", "{keys}/robot_ed25519.pem"], "not a directory"),
    (["log", "keygen", "--out", "{keys}", "--name", "../elsewhere"], "plain file name"),
    (["log", "keygen", "--out", "{keys}", "--name", "auditor_x25519"], "already exists"),
])
def test_bad_input_is_one_line_exit_2(setup, capsys, argv: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    log, _keys, paths = setup
    filled = [a.format(log=log, keys=paths["robot_key"].parent) for a in argv]
    code, _out, err = run(filled, capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err


@pytest.mark.clause("7.3")
def test_wrong_key_and_wrong_robot_are_clear(setup, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log, _keys, _paths = setup
    stranger = make_keys().save(tmp_path / "stranger")
    code, _out, err = run(["log", "export", str(log), "--key", str(stranger["auditor_key"])], capsys)
    assert code == 2 and "opens none of the" in err
    other_heads = write_witnessed_heads(tmp_path / "h.json", heads_from_log(log))
    other_log = tmp_path / "other"
    write_log(other_log, make_keys("440304-RB-2026-000124-6"), entries=10)
    code, out, _ = run(["log", "verify", str(other_log), "--heads", str(other_heads)], capsys)
    assert code == 1 and "BAD_WITNESS" in out


@pytest.mark.clause("8.2")
def test_export_json_lines(setup, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log, _keys, paths = setup
    out_file = tmp_path / "out.jsonl"
    code, _out, err = run(["log", "export", str(log), "--key", str(paths["auditor_key"]), "--topic", "safety_state",
                           "--out", str(out_file)], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(rows) == 40 and all(r["topic"] == "/safety_state" and r["guardian"] == "G-0001" for r in rows)
    assert all("data_base64" in r and "note" in r for r in rows)  # not CDR: exported raw with a note


@pytest.mark.clause("8.2")
def test_export_decodes_ros_messages(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rclpy_serialization = pytest.importorskip("rclpy.serialization")
    from std_msgs.msg import String

    from ftrobot_guard.blackbox.log_writer import LogWriter

    keys = make_keys()
    paths = keys.save(tmp_path / "keys")
    writer = LogWriter(tmp_path / "log", keys.writer_keys())
    writer.open()
    writer.append_message("/chatter", "std_msgs/msg/String", rclpy_serialization.serialize_message(String(data="hi")))
    writer.append_message("/x", "nonexistent_pkg/msg/Thing", b"\x00\x01")
    writer.close()
    code, out, _ = run(["log", "export", str(tmp_path / "log"), "--key", str(paths["auditor_key"])], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and rows[0]["message"] == {"data": "hi"}
    assert rows[1]["data_base64"] == "AAE=" and "not installed" in rows[1]["note"]


def test_keygen_makes_the_department_log_key_pair(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import x25519

    from ftrobot_guard.blackbox.log_writer import LogWriter, WriterKeys
    from ftrobot_guard.trust.keys import fingerprint, load_private_key, load_public_key

    department = tmp_path / "department"
    code, out, err = run(["log", "keygen", "--out", str(department)], capsys)
    assert code == 0, err
    private, public = department / "log_x25519.key", department / "log_x25519.pub.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = load_private_key(private, "x25519")
    recipient = load_public_key(public, "x25519")
    assert isinstance(key, x25519.X25519PrivateKey) and isinstance(recipient, x25519.X25519PublicKey)
    assert key.public_key().public_bytes_raw() == recipient.public_bytes_raw()
    assert f"fingerprint: {fingerprint(recipient)}" in out and str(private) in out and str(public) in out
    # a robot recording for that public key: the department reads its log with the private key
    robot = make_keys()
    writer = LogWriter(tmp_path / "log", WriterKeys(robot.robot_id, robot.signing, (recipient,)))
    writer.open()
    writer.append_message("/safety_state", "std_msgs/msg/String", b"\x00\x01")
    writer.close()
    code, out, _ = run(["log", "export", str(tmp_path / "log"), "--key", str(private), "--raw"], capsys)
    assert code == 0 and [json.loads(line)["data_base64"] for line in out.splitlines()] == ["AAE="]
    # never replaces a key (what was wrapped for the old one could no longer be read)
    before = private.read_bytes()
    code, _out, err = run(["log", "keygen", "--out", str(department)], capsys)
    assert code == 2 and "already exists" in err and private.read_bytes() == before
    code, _out, err = run(["log", "keygen", "--out", str(department), "--name", "robot_copy"], capsys)
    assert code == 0 and (department / "robot_copy.key").is_file(), err


def test_stat(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    log, _keys, _paths = setup
    code, out, _ = run(["log", "stat", str(log), "--json"], capsys)
    info = json.loads(out)
    assert code == 0 and info["segments"] == len(segments(log)) and info["integrity"] == "OK"


@pytest.mark.clause("4.6", "6.2g")
def test_decommission_archives_then_shreds(setup, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log, keys, paths = setup
    archive = tmp_path / "archive.tar"
    code, out, err = run(["decommission", str(log), "--robot-key", str(paths["robot_key"]), "--robot-key",
                          str(paths["robot_x"]), "--auditor-pub", str(paths["auditor_pub"]), "--archive",
                          str(archive)], capsys)
    assert code == 0, out + err
    assert "robot can no longer decrypt the log" in out
    assert not paths["robot_key"].exists() and not paths["robot_x"].exists()
    assert not list((log / "keys").iterdir())
    # the department can still read the archive with its key
    extracted = tmp_path / "extracted"
    with tarfile.open(archive) as tar:
        tar.extractall(extracted, filter="data")
    manifest = json.loads((extracted / "MANIFEST.json").read_text())
    assert manifest["robot_id"] == keys.robot_id and len(manifest["files"]) == len(segments(log))
    code, out, _ = run(["log", "export", str(extracted / "log"), "--key", str(paths["auditor_key"])], capsys)
    assert code == 0 and len(out.splitlines()) == 120
    # and the local log still verifies without any key
    assert run(["log", "verify", str(log)], capsys)[0] == 0


@pytest.mark.clause("4.6")
def test_decommission_refuses_wrong_auditor_key_before_shredding(setup, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log, _keys, paths = setup
    stranger = make_keys().save(tmp_path / "stranger")
    code, _out, err = run(["decommission", str(log), "--robot-key", str(paths["robot_key"]), "--auditor-pub",
                           str(stranger["auditor_pub"]), "--archive", str(tmp_path / "a.tar")], capsys)
    assert code == 2 and "not wrapped for the auditor key" in err
    assert paths["robot_key"].exists()


@pytest.mark.clause("4.6")
def test_decommission_refuses_while_recorder_runs(setup, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log, keys, paths = setup
    from ftrobot_guard.blackbox.log_writer import LogWriter

    writer = LogWriter(log, keys.writer_keys())
    writer.open()
    try:
        code, _out, err = run(["decommission", str(log), "--robot-key", str(paths["robot_key"]), "--auditor-pub",
                               str(paths["auditor_pub"]), "--archive", str(tmp_path / "a.tar")], capsys)
    finally:
        writer.close()
    assert code == 2 and "still writing" in err and paths["robot_key"].exists()


@pytest.mark.clause("6.2e")
def test_unknown_version_reported_not_crashing(setup, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log, _keys, _paths = setup
    copy = tmp_path / "copy"
    shutil.copytree(log, copy)
    path = segments(copy)[0]
    data = path.read_bytes()
    path.write_bytes(data[:8] + b"\x00\x05" + data[10:])
    code, out, err = run(["log", "verify", str(copy)], capsys)
    assert code == 1 and "UNKNOWN_VERSION" in out and "version 5" in out and "Traceback" not in err


@pytest.mark.clause("8.2")
def test_verify_against_department_ca_and_robot_certificate(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import x25519

    from ftrobot_guard.blackbox.log_writer import LogWriter, WriterKeys
    from ftrobot_guard.trust.certificates import certificate_der, load_certificate
    from ftrobot_guard.trust.dev_credentials import make_department, make_robot
    from ftrobot_guard.trust.identity import parse_identity_number
    from ftrobot_guard.trust.keys import load_private_key

    department = make_department(tmp_path / "dept")
    robot = make_robot(tmp_path / "robot", department, parse_identity_number("440304-RB-2026-000123-8"), "r1")
    signing = load_private_key(robot.private_key, "ed25519")
    der = certificate_der(load_certificate(robot.certificate))
    writer = LogWriter(tmp_path / "log", WriterKeys(robot.identity_number, signing,  # type: ignore[arg-type]
                                                    (x25519.X25519PrivateKey.generate().public_key(),),
                                                    certificate_der=der))
    writer.open()
    writer.append_message("/t", "std_msgs/msg/String", b"x")
    writer.close()
    code, out, _ = run(["log", "verify", str(tmp_path / "log"), "--ca", str(department.ca_certificate)], capsys)
    assert code == 0, out
    code, out, _ = run(["log", "verify", str(tmp_path / "log"), "--robot-cert", str(robot.certificate)], capsys)
    assert code == 0 and "robot 440304-RB-2026-000123-8" in out, out
    other = make_department(tmp_path / "other", name="Another Bureau")
    code, out, _ = run(["log", "verify", str(tmp_path / "log"), "--ca", str(other.ca_certificate)], capsys)
    assert code == 1 and "UNTRUSTED_KEY" in out
    stranger = make_robot(tmp_path / "stranger", department, parse_identity_number("440304-RB-2026-000124-6"), "r2")
    code, out, _ = run(["log", "verify", str(tmp_path / "log"), "--robot-cert", str(stranger.certificate)], capsys)
    assert code == 1 and "UNTRUSTED_KEY" in out
