"""The department-signed revocation list: verified, tamper-evident, rollback-proof and followed on disk."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
import yaml

from ftrobot_guard.guardians.revocation_list import (
    RevocationEntry,
    RevocationList,
    RevocationListError,
    RevocationListFile,
    issue_revocation_list,
    load_revocation_list,
)
from ftrobot_guard.trust.certificates import certificate_fingerprint
from guardian_testkit import WALL, Department

pytestmark = pytest.mark.clause("2.7", "6.3")

DEPARTMENT = Department()
FORGER = Department("Not The Department")
GONE = RevocationEntry("G-440304-0007", "", WALL - dt.timedelta(hours=1), "left the service centre")
LOST = RevocationEntry("G-440304-0008", "c" * 64, WALL - dt.timedelta(hours=2), "key lost")


def issue(entries: list[RevocationEntry], sequence: int, department: Department = DEPARTMENT) -> bytes:
    return issue_revocation_list(department.ca, department.key, entries, sequence, WALL)


def test_a_valid_list_revokes_by_guardian_or_by_certificate() -> None:
    revoked = load_revocation_list(issue([GONE, LOST], 3), [FORGER.ca, DEPARTMENT.ca])
    assert (revoked.issuer, revoked.sequence, revoked.issued_at) == (certificate_fingerprint(DEPARTMENT.ca), 3, WALL)
    assert revoked.entries == (GONE, LOST)
    assert revoked.is_revoked("G-440304-0007", "a" * 64) == GONE
    assert revoked.is_revoked("G-440304-0008", "c" * 64) == LOST
    assert revoked.is_revoked("G-440304-0008", "d" * 64) is None
    assert revoked.is_revoked("G-440304-0009", "c" * 64) is None
    assert RevocationList.empty().is_revoked("G-440304-0007", "a" * 64) is None


def test_the_yaml_form_of_the_same_list_verifies() -> None:
    document = json.loads(issue([GONE], 1))
    document["issued_at"] = WALL  # YAML timestamps, not strings
    document["revoked"][0]["revoked_at"] = GONE.revoked_at
    assert load_revocation_list(yaml.safe_dump(document).encode(), [DEPARTMENT.ca]).entries == (GONE,)


@pytest.mark.parametrize("tamper", [
    lambda d: d["revoked"].pop(),
    lambda d: d["revoked"][0].update(guardian_id="G-440304-0099"),
    lambda d: d["revoked"][0].update(certificate_fingerprint="d" * 64),
    lambda d: d.update(sequence=d["sequence"] + 1),
    lambda d: d.update(issued_at="2030-01-01T00:00:00+00:00"),
    lambda d: d.update(signature=d["signature"][:-4] + "AAA="),
    lambda d: d.update(signature="not base64!"),
], ids=["entry removed", "guardian changed", "fingerprint changed", "sequence", "issued_at", "signature", "base64"])
def test_a_tampered_list_is_refused(tamper: object) -> None:
    document = json.loads(issue([GONE, LOST], 4))
    tamper(document)  # type: ignore[operator]
    with pytest.raises(RevocationListError, match="signature does not verify"):
        load_revocation_list(json.dumps(document).encode(), [DEPARTMENT.ca])


def test_a_list_from_another_ca_is_refused() -> None:
    with pytest.raises(RevocationListError, match="not a trusted department CA"):
        load_revocation_list(issue([GONE], 1, FORGER), [DEPARTMENT.ca])
    document = json.loads(issue([GONE], 1, FORGER))
    document["issuer"] = certificate_fingerprint(DEPARTMENT.ca)  # claims the department, signed by the forger
    with pytest.raises(RevocationListError, match="signature does not verify"):
        load_revocation_list(json.dumps(document).encode(), [DEPARTMENT.ca])


@pytest.mark.parametrize(("data", "fragment"), [
    (b"\xff\xfe", "UTF-8"),
    (b"{not json", "JSON/YAML"),
    (b"- a list", "mapping"),
    (b'{"issuer": "x"}', "exactly the fields"),
    (b"x" * (4 * 1024 * 1024 + 1), "more than"),
])
def test_malformed_lists_are_refused(data: bytes, fragment: str) -> None:
    with pytest.raises(RevocationListError, match=fragment):
        load_revocation_list(data, [DEPARTMENT.ca])


def test_malformed_entries_are_refused() -> None:
    document = json.loads(issue([GONE], 1))
    document["revoked"][0]["revoked_at"] = "yesterday"
    with pytest.raises(RevocationListError, match="ISO 8601"):
        load_revocation_list(json.dumps(document).encode(), [DEPARTMENT.ca])
    document["revoked"][0] = {"guardian_id": "G-1"}
    with pytest.raises(RevocationListError, match="exactly the fields"):
        load_revocation_list(json.dumps(document).encode(), [DEPARTMENT.ca])
    with pytest.raises(RevocationListError, match="64 lower-case hex"):
        RevocationEntry("G-1", "ABC", WALL, "")
    with pytest.raises(ValueError, match="does not match"):
        issue_revocation_list(DEPARTMENT.ca, FORGER.key, [], 1, WALL)


def _write(path: Path, data: bytes) -> None:
    """Replace the file as a deployment would (new inode), with a distinct mtime."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_the_file_is_followed_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "revoked.json"
    follower = RevocationListFile(path, [DEPARTMENT.ca])
    assert follower.refresh() == "" and follower.current == RevocationList.empty()  # no file yet: none revoked
    _write(path, issue([], 1))
    assert follower.refresh() == "" and follower().sequence == 1
    _write(path, issue([GONE], 2))
    assert follower.refresh() == "" and follower().is_revoked(GONE.guardian_id, "a" * 64) == GONE
    assert follower.refresh() == ""  # unchanged: nothing re-read

    _write(path, issue([], 1))  # rollback to the list before the revocation
    problem = follower.refresh()
    assert "rollback" in problem and "keeping sequence 2" in problem and "\n" not in problem
    assert follower().is_revoked(GONE.guardian_id, "a" * 64) == GONE

    _write(path, issue([], 2))  # another list under the same sequence
    assert "same sequence" in follower.refresh() and follower().entries == (GONE,)

    _write(path, b"{garbage")
    assert "refused" in follower.refresh() and follower().sequence == 2
    assert follower.problem  # still the problem on the next call while the file stays bad
    assert "refused" in follower.refresh()

    _write(path, issue([GONE], 3, FORGER))
    assert "not a trusted" in follower.refresh() and follower().sequence == 2

    path.unlink()
    assert "missing" in follower.refresh() and follower().entries == (GONE,)  # deleting un-revokes nobody

    _write(path, issue([GONE, LOST], 3))
    assert follower.refresh() == "" and follower().sequence == 3 and len(follower().entries) == 2
