"""Tamper suite: every manipulation of a log is detected by `verify_log` with the right diagnosis,
without the decryption key."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from blackbox_testkit import (
    OTHER_ROBOT_ID,
    LogKeys,
    fix_crc,
    flip_bit,
    heads_from_log,
    make_keys,
    parse,
    rebuild,
    resign_checkpoints,
    segments,
    write_log,
)
from ftrobot_guard.blackbox.record_format import MAGIC, RecordType, canonical_json, sign_header
from ftrobot_guard.blackbox.trust_anchor import TrustAnchor
from ftrobot_guard.blackbox.verification import Diagnosis, Severity, verify_log


@pytest.fixture(scope="module")
def keys() -> LogKeys:
    return make_keys()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, keys: LogKeys) -> Path:
    directory = tmp_path_factory.mktemp("pristine") / "log"
    write_log(directory, keys, entries=400)
    assert len(segments(directory)) >= 4
    return directory


@pytest.fixture()
def log(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "log"
    shutil.copytree(pristine, target)
    (target / ".lock").unlink(missing_ok=True)
    return target


def errors(directory: Path, **kwargs: object) -> set[Diagnosis]:
    report = verify_log(directory, **kwargs)  # type: ignore[arg-type]
    return report.diagnoses(Severity.ERROR)


def data_records(path: Path) -> list:
    _prefix, records, _data = parse(path)
    return [r for r in records if r.record_type == RecordType.DATA]


def test_pristine_log_verifies_clean(log: Path, keys: LogKeys) -> None:
    anchor = TrustAnchor(source="test", public_key=keys.signing.public_key(), robot_id=keys.robot_id)
    report = verify_log(log, anchor=anchor, heads=heads_from_log(log))
    assert report.clean, report.render()
    assert report.exit_code == 0
    assert report.heads_checked == report.heads_confirmed > 0
    assert report.segments[-1].closed


@pytest.mark.clause("3.1b", "5.1a")
def test_bit_flip_in_ciphertext_is_corrupt_record(log: Path) -> None:
    path = segments(log)[1]
    record = data_records(path)[2]
    data = path.read_bytes()
    path.write_bytes(flip_bit(data, record.offset + 40, 3))
    report = verify_log(log)
    found = [f for f in report.findings if f.diagnosis is Diagnosis.CORRUPT_RECORD]
    assert found and found[0].offset == record.offset and found[0].segment == path.name
    assert report.exit_code == 1


@pytest.mark.clause("3.1b", "5.1a")
def test_bit_flip_with_recomputed_crc_is_record_altered(log: Path) -> None:
    path = segments(log)[1]
    prefix, records, _ = parse(path)
    raws = [r.raw for r in records]
    target = next(i for i, r in enumerate(records) if r.record_type == RecordType.DATA)
    raws[target] = fix_crc(flip_bit(raws[target], 50))
    rebuild(path, prefix, raws)
    assert Diagnosis.RECORD_ALTERED in errors(log)


@pytest.mark.clause("3.1b", "5.1a")
def test_bit_flip_in_time_field_is_detected(log: Path) -> None:
    path = segments(log)[2]
    prefix, records, _ = parse(path)
    raws = [r.raw for r in records]
    raws[0] = fix_crc(flip_bit(raws[0], 20))  # time_ns byte
    rebuild(path, prefix, raws)
    assert Diagnosis.RECORD_ALTERED in errors(log)


@pytest.mark.clause("3.1b", "5.1a")
def test_record_deletion_is_record_missing(log: Path) -> None:
    path = segments(log)[1]
    prefix, records, _ = parse(path)
    victim = next(i for i, r in enumerate(records) if r.record_type == RecordType.DATA and i > 0)
    rebuild(path, prefix, [r.raw for i, r in enumerate(records) if i != victim])
    report = verify_log(log)
    missing = [f for f in report.findings if f.diagnosis is Diagnosis.RECORD_MISSING]
    assert missing and missing[0].sequence == records[victim].sequence
    assert report.diagnoses(Severity.ERROR) == {Diagnosis.RECORD_MISSING}


@pytest.mark.clause("3.1b", "5.1a")
def test_reordering_is_record_reordered(log: Path) -> None:
    path = segments(log)[1]
    prefix, records, _ = parse(path)
    raws = [r.raw for r in records]
    raws[1], raws[2] = raws[2], raws[1]
    rebuild(path, prefix, raws)
    found = errors(log)
    assert Diagnosis.RECORD_REORDERED in found
    assert Diagnosis.RECORD_MISSING not in found


@pytest.mark.clause("3.1b", "5.1a")
def test_duplication_is_record_duplicated(log: Path) -> None:
    path = segments(log)[1]
    prefix, records, _ = parse(path)
    raws = [r.raw for r in records]
    raws.insert(3, raws[2])
    rebuild(path, prefix, raws)
    assert errors(log) == {Diagnosis.RECORD_DUPLICATED}


@pytest.mark.clause("3.1b", "5.1a")
def test_segment_from_another_robot_is_foreign(log: Path, tmp_path: Path) -> None:
    other = make_keys(OTHER_ROBOT_ID)
    other_dir = tmp_path / "other"
    write_log(other_dir, other, entries=400)
    victim = segments(log)[1]
    victim.unlink()
    shutil.copy(segments(other_dir)[1], log / segments(other_dir)[1].name)
    report = verify_log(log)
    assert Diagnosis.FOREIGN_SEGMENT in report.diagnoses(Severity.ERROR)
    assert Diagnosis.MISSING_SEGMENT not in report.diagnoses(Severity.ERROR)  # explained by the splice


@pytest.mark.clause("3.1b", "5.1a")
def test_segment_from_another_log_of_same_robot_is_foreign(log: Path, tmp_path: Path, keys: LogKeys) -> None:
    older = tmp_path / "older"
    write_log(older, keys, entries=400)
    victim = segments(log)[2]
    victim.unlink()
    shutil.copy(segments(older)[2], log / segments(older)[2].name)
    assert Diagnosis.FOREIGN_SEGMENT in errors(log)


@pytest.mark.clause("3.1b", "5.1a")
def test_replayed_old_segment_is_duplicate(log: Path) -> None:
    old = segments(log)[1]
    shutil.copy(old, log / ("9999999999-" + old.name.split("-", 1)[1]))
    assert errors(log) == {Diagnosis.DUPLICATE_SEGMENT}


@pytest.mark.clause("3.1b", "5.1a")
def test_segment_replaced_by_older_one_is_detected(log: Path) -> None:
    files = segments(log)
    files[2].unlink()
    shutil.copy(files[1], log / ("0000000002-" + "0" * 32 + ".ftbb"))
    found = errors(log)
    assert Diagnosis.DUPLICATE_SEGMENT in found and Diagnosis.MISSING_SEGMENT in found


@pytest.mark.clause("3.1b", "5.1a")
def test_missing_middle_segment(log: Path) -> None:
    segments(log)[2].unlink()
    report = verify_log(log)
    missing = [f for f in report.findings if f.diagnosis is Diagnosis.MISSING_SEGMENT]
    assert missing and missing[0].segment_index == 2 and "records" in missing[0].message


@pytest.mark.clause("3.1b", "5.1a")
def test_missing_oldest_segment_without_manifest(log: Path) -> None:
    segments(log)[0].unlink()
    assert errors(log) == {Diagnosis.MISSING_SEGMENT}


@pytest.mark.clause("3.1b", "5.1a")
def test_truncated_middle_segment_is_truncation(log: Path) -> None:
    path = segments(log)[1]
    prefix, records, _ = parse(path)
    rebuild(path, prefix, [r.raw for r in records[:-3]])
    report = verify_log(log)
    assert Diagnosis.TRUNCATION in report.diagnoses(Severity.ERROR)


@pytest.fixture()
def open_log(tmp_path: Path, keys: LogKeys) -> Path:
    """A log whose writer is still running (no CLOSE), last segment with several checkpoints."""
    directory = tmp_path / "open"
    writer = write_log(directory, keys, entries=57, flush_every=2, close=False)
    writer.flush(force_checkpoint=True)
    return directory


@pytest.mark.clause("3.1b", "5.1a")
def test_truncated_last_segment_at_record_boundary_needs_witness(open_log: Path) -> None:
    log = open_log
    heads = heads_from_log(log)
    path = segments(log)[-1]
    prefix, records, _ = parse(path)
    rebuild(path, prefix, [r.raw for r in records[:2]])
    without = verify_log(log)
    assert without.diagnoses(Severity.ERROR) == set()  # indistinguishable from an open log ...
    assert Diagnosis.UNSEALED_TAIL in without.diagnoses(Severity.INFO)
    with_heads = verify_log(log, heads=heads)
    assert Diagnosis.TRUNCATION in with_heads.diagnoses(Severity.ERROR)  # ... unless witnessed


def test_torn_tail_unwitnessed_is_torn_tail_not_truncation(open_log: Path) -> None:
    log = open_log
    heads = heads_from_log(log)
    path = segments(log)[-1]
    _prefix, records, data = parse(path)
    last_cp = max(i for i, r in enumerate(records) if r.record_type == RecordType.CHECKPOINT and i < len(records) - 2)
    cut = records[last_cp].offset + records[last_cp].length + 10  # inside the next record
    path.write_bytes(data[:cut])
    witnessed = [h for h in heads if h.sequence <= records[last_cp].sequence]
    report = verify_log(log, heads=witnessed)
    assert report.diagnoses(Severity.WARNING) == {Diagnosis.TORN_TAIL}
    assert report.exit_code == 1
    cut_more = verify_log(log, heads=heads)  # a later checkpoint was witnessed: now it is a truncation
    assert Diagnosis.TRUNCATION in cut_more.diagnoses(Severity.ERROR)


@pytest.mark.clause("5.1a", "8.2")
def test_rewritten_history_with_robot_key_only_witness_detects(open_log: Path, keys: LogKeys) -> None:
    log = open_log
    heads = heads_from_log(log)
    path = segments(log)[-1]
    prefix, records, _ = parse(path)
    raws = [r.raw for r in records]
    target = next(i for i, r in enumerate(records) if r.record_type == RecordType.DATA)
    raws[target] = fix_crc(flip_bit(raws[target], 60))
    rebuild(path, prefix, resign_checkpoints(path, keys.signing, raws))
    assert errors(log) == set()  # self-consistent forgery by someone holding the robot key
    assert Diagnosis.WITNESS_MISMATCH in errors(log, heads=heads)


@pytest.mark.clause("3.1b", "5.1a")
def test_header_edit_breaks_signature(log: Path) -> None:
    path = segments(log)[1]
    data = path.read_bytes()
    start = data.index(b'"created_ns":') + len(b'"created_ns":')
    digit = data[start : start + 1]
    path.write_bytes(data[:start] + (b"2" if digit != b"2" else b"3") + data[start + 1 :])
    assert Diagnosis.BAD_SIGNATURE in errors(log)


@pytest.mark.clause("6.2e")
def test_unknown_format_version(log: Path) -> None:
    path = segments(log)[1]
    data = path.read_bytes()
    path.write_bytes(data[:8] + struct.pack(">H", 7) + data[10:])
    report = verify_log(log)
    found = [f for f in report.findings if f.diagnosis is Diagnosis.UNKNOWN_VERSION]
    assert found and "version 7" in found[0].message
    assert Diagnosis.MISSING_SEGMENT not in report.diagnoses(Severity.ERROR)


def test_corrupt_header(log: Path) -> None:
    path = segments(log)[2]
    data = path.read_bytes()
    path.write_bytes(data[:20] + b"\xff" * 10 + data[30:])
    assert Diagnosis.CORRUPT_HEADER in errors(log)


def test_bad_magic(log: Path) -> None:
    path = segments(log)[2]
    data = path.read_bytes()
    path.write_bytes(b"NOTALOG!" + data[len(MAGIC):])
    assert Diagnosis.CORRUPT_HEADER in errors(log)


@pytest.mark.clause("3.1b", "5.1a")
def test_forged_checkpoint_signature(log: Path) -> None:
    path = segments(log)[1]
    prefix, records, _ = parse(path)
    raws = [r.raw for r in records]
    index = next(i for i, r in enumerate(records) if r.record_type == RecordType.CHECKPOINT)
    raws[index] = fix_crc(flip_bit(raws[index], len(raws[index]) - 10))  # inside the signature
    rebuild(path, prefix, raws)
    assert Diagnosis.BAD_SIGNATURE in errors(log)


@pytest.mark.clause("3.1b")
def test_wrong_trust_anchor_is_untrusted(log: Path) -> None:
    stranger = make_keys()
    anchor = TrustAnchor(source="stranger.pem", public_key=stranger.signing.public_key())
    found = errors(log, anchor=anchor)
    assert Diagnosis.UNTRUSTED_KEY in found or Diagnosis.FOREIGN_SEGMENT in found


@pytest.mark.clause("8.2")
def test_heads_of_another_robot_are_refused(log: Path, tmp_path: Path) -> None:
    other = make_keys(OTHER_ROBOT_ID)
    write_log(tmp_path / "o", other, entries=50)
    assert Diagnosis.BAD_WITNESS in errors(log, heads=heads_from_log(tmp_path / "o"))


@pytest.mark.clause("3.1b", "5.1a")
def test_resigned_header_by_attacker_key_is_foreign(log: Path) -> None:
    """A header re-signed with another key claims this robot: the key does not match the log's."""
    path = segments(log)[1]
    prefix, _records, data = parse(path)
    attacker = make_keys()
    header = json.loads(prefix.header_json)
    header["robot_key"] = attacker.signing.public_key().public_bytes_raw().hex()
    body = canonical_json(header)
    new_prefix = data[:10] + struct.pack(">I", len(body)) + body + sign_header(attacker.signing, body)
    path.write_bytes(new_prefix + data[prefix.records_offset :])
    assert Diagnosis.FOREIGN_SEGMENT in errors(log)


def test_empty_directory(tmp_path: Path) -> None:
    assert errors(tmp_path) == {Diagnosis.EMPTY_LOG}
