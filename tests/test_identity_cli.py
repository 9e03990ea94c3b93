"""`ftrobot id|keys|dept` subcommands, called in-process through argparse."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from ftrobot_guard.cli.identity_commands import register
from ftrobot_guard.trust.certificates import load_certificate, verify_guardian_certificate, verify_robot_certificate
from ftrobot_guard.trust.keys import fingerprint, load_public_key

NUMBER = "440304-RB-2026-000123-8"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ftrobot")
    register(top.add_subparsers(dest="command", required=True))
    return top


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = parser().parse_args(list(argv))
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.clause("2.3")
def test_id_check_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "id", "check", NUMBER)
    assert code == 0 and err == ""
    assert f"{NUMBER}: valid" in out and "division code:   440304" in out and "serial:          000123" in out


@pytest.mark.parametrize(
    ("number", "fragment"),
    [("440304-RB-2026-000123-7", "expected '8'"), ("440304-RB-2026-000123", "5 parts"), (" " + NUMBER, "whitespace")],
)
@pytest.mark.clause("2.3")
def test_id_check_invalid_is_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], number: str, fragment: str) -> None:
    code, out, err = run(capsys, "id", "check", number)
    assert code == 2 and out == ""
    assert err.startswith("ftrobot id check: error: ") and fragment in err
    assert err.count("\n") == 1


@pytest.mark.clause("2.3")
def test_id_make(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "id", "make", "--division", "440304", "--year", "2026", "--serial", "123") == (0, NUMBER + "\n", "")
    code, _, err = run(capsys, "id", "make", "--division", "440304", "--year", "2026", "--serial", "0")
    assert code == 2 and "serial 0 out of range" in err


def test_argparse_rejects_non_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["id", "make", "--division", "440304", "--year", "20x6", "--serial", "1"])
    assert info.value.code == 2
    assert "--year" in capsys.readouterr().err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["id"], ["id", "check"], ["id", "make"], ["keys"], ["keys", "init"], ["dept"], ["dept", "init"],
                 ["dept", "issue"], ["dept", "issue-guardian"], ["dept", "verify"]):
        with pytest.raises(SystemExit) as info:
            parser().parse_args([*argv, "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert "usage: ftrobot " + " ".join(argv) in out
        assert len(out.splitlines()) > 3


@pytest.mark.clause("7.1")
def test_keys_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "robot.key"
    code, out, err = run(capsys, "keys", "init", "--out", str(key))
    assert code == 0 and err == ""
    assert mode(key) == 0o600
    pub = load_public_key(tmp_path / "robot.key.pub")
    assert f"fingerprint: {fingerprint(pub)}" in out
    code, _, err = run(capsys, "keys", "init", "--out", str(key))
    assert code == 2 and "already exists" in err and str(key) in err
    assert load_public_key(tmp_path / "robot.key.pub") == pub
    assert run(capsys, "keys", "init", "--out", str(key), "--force")[0] == 0
    assert load_public_key(tmp_path / "robot.key.pub") != pub
    assert mode(key) == 0o600


def _dept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    ca_dir = tmp_path / "ca"
    code, _out, err = run(capsys, "dept", "init", "--dir", str(ca_dir), "--name", "Futian Data Bureau", "--days", "30")
    assert code == 0 and err == "", err
    return ca_dir


def test_dept_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir = _dept(tmp_path, capsys)
    assert mode(ca_dir / "ca.key") == 0o600
    assert mode(ca_dir) == 0o700
    ca = load_certificate(ca_dir / "ca.pem")
    assert ca.not_valid_after_utc - ca.not_valid_before_utc == dt.timedelta(days=30)
    code, _, err = run(capsys, "dept", "init", "--dir", str(ca_dir), "--name", "Again")
    assert code == 2 and "refusing to replace a department CA" in err


@pytest.mark.clause("2.3")
def test_dept_issue_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir = _dept(tmp_path, capsys)
    run(capsys, "keys", "init", "--out", str(tmp_path / "robot.key"))
    cert = tmp_path / "robot.pem"
    argv = ["dept", "issue", "--ca-dir", str(ca_dir), "--robot-public-key", str(tmp_path / "robot.key.pub"),
            "--id", NUMBER, "--name", "Xiao Fu", "--department", "Futian Data Bureau", "--days", "10",
            "--out", str(cert)]
    code, out, err = run(capsys, *argv)
    assert code == 0 and err == "" and NUMBER in out
    identity = verify_robot_certificate(cert.read_bytes(), [load_certificate(ca_dir / "ca.pem")],
                                        dt.datetime.now(dt.UTC))
    assert str(identity.identity_number) == NUMBER and identity.robot_name == "Xiao Fu"
    assert identity.public_key == load_public_key(tmp_path / "robot.key.pub")
    code, _, err = run(capsys, *argv)
    assert code == 2 and "already exists" in err
    code, out, _ = run(capsys, "dept", "verify", "--ca", str(ca_dir / "ca.pem"), str(cert))
    assert code == 0 and "valid robot certificate" in out and NUMBER in out


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"--id": "440304-RB-2026-000123-9"}, "expected '8'"),
        ({"--days": "400"}, "beyond the CA's expiry"),
        ({"--robot-public-key": "robot.key"}, "not a PEM public key"),
        ({"--robot-public-key": "nowhere.pub"}, "no such key file"),
        ({"--ca-dir": "nowhere"}, "not a directory"),
        ({"--name": "x" * 65}, "longer than 64"),
    ],
)
def test_dept_issue_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, str], fragment: str) -> None:
    ca_dir = _dept(tmp_path, capsys)
    run(capsys, "keys", "init", "--out", str(tmp_path / "robot.key"))
    options = {"--ca-dir": str(ca_dir), "--robot-public-key": str(tmp_path / "robot.key.pub"), "--id": NUMBER,
               "--name": "Xiao Fu", "--department": "Futian", "--days": "10", "--out": str(tmp_path / "c.pem")}
    for name, value in change.items():
        options[name] = value if name in ("--id", "--days", "--name") else str(tmp_path / value)
    argv = ["dept", "issue"] + [item for pair in options.items() for item in pair]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and fragment in err and err.count("\n") == 1
    assert not (tmp_path / "c.pem").exists()


@pytest.mark.clause("7.1")
def test_dept_issue_refuses_a_readable_ca_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir = _dept(tmp_path, capsys)
    run(capsys, "keys", "init", "--out", str(tmp_path / "robot.key"))
    os.chmod(ca_dir / "ca.key", 0o644)
    code, _, err = run(capsys, "dept", "issue", "--ca-dir", str(ca_dir), "--robot-public-key",
                       str(tmp_path / "robot.key.pub"), "--id", NUMBER, "--name", "Xiao Fu", "--department", "F",
                       "--out", str(tmp_path / "c.pem"))
    assert code == 2 and "ca.key: permissions 0644" in err


@pytest.mark.clause("2.7", "6.1c")
def test_dept_issue_guardian(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir = _dept(tmp_path, capsys)
    run(capsys, "keys", "init", "--out", str(tmp_path / "g.key"))
    cert = tmp_path / "g.pem"
    code, out, err = run(capsys, "dept", "issue-guardian", "--ca-dir", str(ca_dir), "--guardian-public-key",
                         str(tmp_path / "g.key.pub"), "--guardian-id", "G-0001", "--name", "Zhang San", "--role",
                         "operator", "--department", "Futian", "--days", "5", "--out", str(cert))
    assert code == 0 and err == "" and "G-0001" in out
    guardian = verify_guardian_certificate(cert.read_bytes(), [load_certificate(ca_dir / "ca.pem")],
                                           dt.datetime.now(dt.UTC))
    assert (guardian.guardian_id, guardian.role) == ("G-0001", "operator")
    code, out, _ = run(capsys, "dept", "verify", "--ca", str(ca_dir), str(cert))
    assert code == 0 and "valid guardian certificate" in out


@pytest.mark.clause("2.3")
def test_dept_verify_refuses_a_foreign_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir = _dept(tmp_path, capsys)
    other = tmp_path / "other"
    run(capsys, "dept", "init", "--dir", str(other), "--name", "Other Bureau")
    run(capsys, "keys", "init", "--out", str(tmp_path / "robot.key"))
    cert = tmp_path / "robot.pem"
    run(capsys, "dept", "issue", "--ca-dir", str(other), "--robot-public-key", str(tmp_path / "robot.key.pub"),
        "--id", NUMBER, "--name", "Xiao Fu", "--department", "Other", "--out", str(cert))
    code, _, err = run(capsys, "dept", "verify", "--ca", str(ca_dir / "ca.pem"), str(cert))
    assert code == 2 and str(cert) in err and "not a trusted department CA" in err
