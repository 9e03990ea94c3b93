"""Retention within a disk budget: never younger than the retention period, signed manifests."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from blackbox_testkit import BASE_NS, FakeClock, LogKeys, heads_from_log, make_keys, segments, write_log
from ftrobot_guard.blackbox.retention import (
    DAY_NS,
    RetentionPolicy,
    RetentionResult,
    RetentionWorker,
    enforce_retention,
    parse_size,
    retention_status,
)
from ftrobot_guard.blackbox.segment_reader import directory_size
from ftrobot_guard.blackbox.verification import Diagnosis, Severity, verify_log

MIB = 1024 * 1024


@pytest.fixture()
def old_log(tmp_path: Path) -> tuple[Path, LogKeys]:
    keys = make_keys()
    directory = tmp_path / "log"
    write_log(directory, keys, entries=3000, payload_size=1200, clock=FakeClock(step_ns=DAY_NS // 100))
    assert directory_size(directory) > 2 * MIB
    return directory, keys


@pytest.mark.clause("6.2g")
def test_nothing_younger_than_retention_is_deleted(old_log: tuple[Path, LogKeys]) -> None:
    directory, keys = old_log
    before = segments(directory)
    now = BASE_NS + 100 * DAY_NS  # everything is younger than 183 days
    result = enforce_retention(directory, keys.signing, keys.robot_id, RetentionPolicy(budget_bytes=MIB), now)
    assert result.deleted == [] and segments(directory) == before
    assert result.status is not None and result.status.level == "ERROR"


@pytest.mark.clause("6.2g")
def test_old_segments_beyond_budget_are_deleted_with_manifest(old_log: tuple[Path, LogKeys]) -> None:
    directory, keys = old_log
    heads = heads_from_log(directory)
    now = BASE_NS + 400 * DAY_NS
    budget = directory_size(directory) // 2
    result = enforce_retention(directory, keys.signing, keys.robot_id, RetentionPolicy(budget_bytes=budget), now)
    assert result.deleted and result.manifest is not None
    assert sum(p.stat().st_size for p in segments(directory)) <= budget
    assert [d.segment_index for d in result.deleted] == list(range(len(result.deleted)))
    report = verify_log(directory, heads=heads)
    assert report.clean, report.render()
    assert Diagnosis.DELETED_BY_RETENTION in report.diagnoses(Severity.INFO)
    assert report.heads_confirmed == report.heads_checked


@pytest.mark.clause("6.2g")
def test_deleting_only_young_part_stops_at_cutoff(old_log: tuple[Path, LogKeys]) -> None:
    directory, keys = old_log
    now = BASE_NS + 183 * DAY_NS + 10 * DAY_NS  # only the first ~10 days are old enough
    result = enforce_retention(directory, keys.signing, keys.robot_id, RetentionPolicy(budget_bytes=MIB), now)
    cutoff = now - 183 * DAY_NS
    assert all(d.last_time_ns < cutoff for d in result.deleted)
    remaining_oldest = min(int(p.name[:10]) for p in segments(directory))
    assert remaining_oldest == len(result.deleted)


@pytest.mark.clause("5.1a", "6.2g")
def test_forged_or_removed_manifest_is_detected(old_log: tuple[Path, LogKeys], tmp_path: Path) -> None:
    directory, keys = old_log
    now = BASE_NS + 400 * DAY_NS
    result = enforce_retention(directory, keys.signing, keys.robot_id,
                               RetentionPolicy(budget_bytes=directory_size(directory) // 2), now)
    assert result.manifest is not None
    forged = tmp_path / "forged"
    shutil.copytree(directory, forged)
    manifest = forged / "deletions" / result.manifest.name
    doc = json.loads(manifest.read_text())
    doc["deleted"][0]["last_sequence"] += 1
    manifest.write_text(json.dumps(doc))
    assert Diagnosis.BAD_MANIFEST in verify_log(forged).diagnoses(Severity.ERROR)
    result.manifest.unlink()
    assert Diagnosis.MISSING_SEGMENT in verify_log(directory).diagnoses(Severity.ERROR)


@pytest.mark.clause("6.2g")
def test_status_warns_well_before_budget(old_log: tuple[Path, LogKeys]) -> None:
    directory, _keys = old_log
    used = directory_size(directory)
    now = BASE_NS + 30 * DAY_NS
    rate_warn = retention_status(directory, RetentionPolicy(budget_bytes=used * 3), now)  # 30 days used a third
    assert rate_warn.level == "WARN" and "less than the 183-day retention" in rate_warn.message
    ok = retention_status(directory, RetentionPolicy(budget_bytes=used * 100), now, bytes_per_day=used / 1000)
    assert ok.level == "OK"
    full = retention_status(directory, RetentionPolicy(budget_bytes=int(used / 0.85)), now, bytes_per_day=1.0)
    assert full.level == "WARN" and "%" in full.message


@pytest.mark.clause("6.2g")
def test_retention_worker_deletes_on_its_own_thread(old_log: tuple[Path, LogKeys]) -> None:
    """The recorder's retention pass and disk figures run on a thread of their own, never on the
    thread that takes messages."""
    directory, keys = old_log
    deleted = threading.Event()
    seen: list[tuple[RetentionResult, str]] = []

    def on_deleted(result: RetentionResult) -> None:
        seen.append((result, threading.current_thread().name))
        deleted.set()

    worker = RetentionWorker(directory, keys.signing, keys.robot_id,
                             RetentionPolicy(budget_bytes=directory_size(directory) // 2), check_s=0.05,
                             status_s=0.05, on_deleted=on_deleted, clock=lambda: BASE_NS + 400 * DAY_NS)
    worker.start()
    try:
        assert deleted.wait(20.0), "no retention pass within 20 s"
    finally:
        worker.stop()
    result, thread_name = seen[0]
    assert result.deleted and thread_name == worker.name != threading.current_thread().name
    assert worker.status is not None and worker.status.segments == len(segments(directory)) and worker.error == ""
    assert verify_log(directory).clean


def test_retention_worker_reports_a_failing_pass_once(tmp_path: Path) -> None:
    keys = make_keys()
    errors: list[str] = []
    passes = []
    five_passes = threading.Event()

    def clock() -> int:  # read once per pass
        passes.append(1)
        if len(passes) >= 5:
            five_passes.set()
        return BASE_NS

    worker = RetentionWorker(tmp_path / "gone", keys.signing, keys.robot_id, RetentionPolicy(), check_s=0.02,
                             status_s=0.02, on_error=errors.append, clock=clock)
    worker.start()
    try:
        assert five_passes.wait(20.0), "fewer than five retention passes in 20 s"
    finally:
        worker.stop()
    assert "no such log directory" in worker.error and worker.status is None
    assert errors == [worker.error]  # reported once, not every pass


@pytest.mark.clause("6.2g")
def test_policy_refuses_short_retention() -> None:
    with pytest.raises(ValueError, match="183"):
        RetentionPolicy(retention_days=30)


def test_parse_size() -> None:
    assert parse_size("20GiB") == 20 * 2**30 and parse_size("500MB") == 500 * 10**6 and parse_size("1024") == 1024
    with pytest.raises(ValueError, match="size"):
        parse_size("lots")
