"""GuardianRegistry: certificates by guardian id from a directory, followed on change, duplicates refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ftrobot_guard.guardians.guardian_registry import GuardianRegistry
from guardian_testkit import Department

pytestmark = pytest.mark.clause("2.7")

DEPARTMENT = Department()
FIRST = DEPARTMENT.guardian("G-440304-0007")
SECOND = DEPARTMENT.guardian("G-440304-0008", "maintainer")
RENEWED = DEPARTMENT.guardian("G-440304-0007")


def test_certificates_are_found_by_the_id_in_their_subject(tmp_path: Path) -> None:
    (tmp_path / "li-wei.pem").write_bytes(FIRST.pem)
    (tmp_path / "zhang.der").write_bytes(SECOND.der)
    (tmp_path / "notes.txt").write_text("ignored")
    registry = GuardianRegistry(tmp_path)
    assert registry.refresh() == "" and registry.guardian_ids == {FIRST.guardian_id, SECOND.guardian_id}
    assert registry.certificate_of(FIRST.guardian_id) == FIRST.pem
    assert registry.certificate_of(SECOND.guardian_id) == SECOND.der
    assert registry.certificate_of("li-wei") is None


def test_changes_are_picked_up_and_two_files_for_one_id_refuse_it(tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_bytes(FIRST.pem)
    registry = GuardianRegistry(tmp_path)
    (tmp_path / "b.pem").write_bytes(SECOND.pem)
    assert registry.certificate_of(SECOND.guardian_id) is None  # not before refresh()
    assert registry.refresh() == "" and registry.certificate_of(SECOND.guardian_id) == SECOND.pem
    (tmp_path / "a-renewed.pem").write_bytes(RENEWED.pem)
    problem = registry.refresh()
    assert FIRST.guardian_id in problem and "2 certificate files" in problem and "a.pem" in problem
    assert registry.certificate_of(FIRST.guardian_id) is None  # fail safe: neither is guessed
    assert registry.certificate_of(SECOND.guardian_id) == SECOND.pem
    (tmp_path / "a.pem").unlink()
    assert registry.refresh() == "" and registry.certificate_of(FIRST.guardian_id) == RENEWED.pem
    os.replace(tmp_path / "b.pem", tmp_path / "b.der")
    (tmp_path / "b.der").write_bytes(SECOND.der)
    assert registry.refresh() == "" and registry.certificate_of(SECOND.guardian_id) == SECOND.der


def test_bad_files_are_skipped_and_reported(tmp_path: Path) -> None:
    (tmp_path / "good.pem").write_bytes(FIRST.pem)
    (tmp_path / "bad.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    (tmp_path / "huge.der").write_bytes(bytes(20000))
    registry = GuardianRegistry(tmp_path)
    assert registry.guardian_ids == {FIRST.guardian_id}
    assert len(registry.problems) == 2 and all("\n" not in p for p in registry.problems)
    assert "bad.pem" in registry.refresh()


def test_a_missing_directory_registers_nobody(tmp_path: Path) -> None:
    registry = GuardianRegistry(tmp_path / "absent")
    assert "cannot list" in registry.refresh() and registry.guardian_ids == frozenset()
    (tmp_path / "absent").mkdir()
    (tmp_path / "absent" / "g.pem").write_bytes(FIRST.pem)
    assert registry.refresh() == "" and registry.certificate_of(FIRST.guardian_id) == FIRST.pem
