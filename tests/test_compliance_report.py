"""Traceability: the clause list is valid, an unknown clause marker fails the run, a run records every
test's clauses and outcome, and the report lists as gaps the clauses without a passing test."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from compliance_report import (
    CLAUSES_FILE,
    CaseResult,
    Clause,
    ClauseListError,
    ResultsError,
    SuiteRun,
    clause_statuses,
    load_clauses,
    load_results,
    main,
    parse_clauses,
    parse_results,
    render,
)

TESTS_DIR = Path(__file__).resolve().parent
TOOLS_DIR = TESTS_DIR.parent / "tools"


def _clause(clause_id: str, software: tuple[str, ...] = ("does it",), planned: tuple[str, ...] = ()) -> Clause:
    return Clause(clause_id, f"title {clause_id}", f"asks {clause_id}", software, planned)


def _gaps_section(report: str) -> str:
    return report.split("## Gaps", 1)[1].split("## Clauses", 1)[0]


def test_the_clause_list_loads_in_clause_order() -> None:
    clauses = load_clauses(CLAUSES_FILE)
    assert len(clauses) >= 20
    order = [(int(c.id.split(".")[0]), int(c.id.split(".")[1].rstrip("abcdefgh")), c.id) for c in clauses]
    assert order == sorted(order)
    assert {"2.3", "6.2g", "6.4b", "6.7c", "7.3"} <= {c.id for c in clauses}
    assert all(c.software or c.planned for c in clauses), "each clause says what is done or planned for it"


def _document(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": "6.7c", "title": "t", "says": "s", "software": ["x"], "planned": []}
    entry.update(changes)
    return {"clauses": [entry]}


@pytest.mark.parametrize(
    "document, message",
    [
        ({"clauses": []}, "non-empty list 'clauses'"),
        (["6.7c"], "non-empty list 'clauses'"),
        (_document(id="6.7"), None),  # valid: a clause without items
        (_document(id="six"), "field 'id' must be a clause number"),
        (_document(id=6.7), "field 'id' must be a clause number"),
        (_document(says=""), "clause 6.7c: field 'says'"),
        (_document(software="x"), "clause 6.7c: field 'software' must be a list"),
        (_document(planned=[3]), "clause 6.7c: field 'planned' must be a list"),
        (_document(owner="me"), "unknown field"),
        ({"clauses": [_document()["clauses"][0], _document()["clauses"][0]]}, "clause 6.7c: listed twice"),
    ],
)
def test_malformed_clause_lists_are_refused_naming_the_clause(document: Any, message: str | None) -> None:
    if message is None:
        assert [c.id for c in parse_clauses(document)] == ["6.7"]
        return
    with pytest.raises(ClauseListError, match=message):
        parse_clauses(document)


def test_a_clause_without_a_passing_test_is_a_gap() -> None:
    clauses = [_clause("2.3"), _clause("5.2a", software=(), planned=("the gate",)), _clause("6.4b"), _clause("6.7c")]
    tests = (
        CaseResult("tests/test_a.py::test_id[one]", ("2.3",), "passed"),
        CaseResult("tests/test_a.py::test_id[two]", ("2.3", "6.7c"), "passed"),
        CaseResult("tests/test_b.py::test_monitor", ("6.4b",), "failed"),
        CaseResult("tests/test_b.py::test_skipped", ("6.4b",), "skipped"),
        CaseResult("tests/test_c.py::test_stop", ("6.7c",), "failed"),
        CaseResult("tests/test_c.py::test_unmarked", (), "passed"),
    )
    run = SuiteRun("jazzy", "2026-01-01T00:00:00Z", 1, tests)
    statuses = {s.clause.id: s for s in clause_statuses(clauses, run)}
    assert [cid for cid, s in statuses.items() if s.is_gap] == ["5.2a", "6.4b"]
    assert (statuses["2.3"].passed, statuses["6.7c"].passed, statuses["6.7c"].failed) == (2, 1, 1)
    report = render(clauses, run)
    assert "**2 of 4 clauses verified by passing tests; 2 gaps.**" in report
    gaps = _gaps_section(report)
    assert "**5.2a title 5.2a**: nothing built for it yet; it waits for the safety core. Planned: the gate" in gaps
    assert "**6.4b title 6.4b**: its tests fail (1 failing case(s))" in gaps
    assert "2.3" not in gaps and "6.7c" not in gaps
    assert "| 6.7c | title 6.7c | 1/2 | **failing** |" in report
    assert "- `tests/test_a.py::test_id`: 2 cases: 2 passed" in report
    assert "6 tests: 3 passed, 2 failed, 1 skipped (pytest exit status 1); 5 tests name a clause." in report


def test_results_naming_an_unknown_clause_are_refused() -> None:
    document = {"format": "ftrobot-clause-results", "version": 1, "ros_distro": "jazzy", "started": "x",
                "exit_status": 0, "tests": [{"nodeid": "t::a", "clauses": ["9.9z"], "outcome": "passed"}]}
    with pytest.raises(ResultsError, match=r"t::a names unknown clause '9\.9z'"):
        parse_results(document, {"2.3"})
    document["tests"] = [{"nodeid": "t::a", "clauses": ["2.3"], "outcome": "flaky"}]
    with pytest.raises(ResultsError, match="malformed test entry"):
        parse_results(document, {"2.3"})


def _run_inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str,
               *args: str) -> pytest.RunResult:
    pytester.makeconftest('pytest_plugins = ["clause_traceability"]\n')
    pytester.makepyfile(test_inner=source)
    path = os.pathsep.join(filter(None, [str(TESTS_DIR), str(TOOLS_DIR), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv("FTROBOT_ROS_DISTRO", "jazzy")
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args)


def test_an_unknown_clause_marker_fails_the_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run_inner(pytester, monkeypatch, """
import pytest

@pytest.mark.clause("2.3")
def test_known():
    pass

@pytest.mark.clause("9.9z")
def test_unknown():
    pass

@pytest.mark.clause()
def test_empty():
    pass
""")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*clause markers naming no clause of*clauses.yaml*",
        "*test_inner.py::test_unknown: unknown clause '9.9z'",
        "*test_inner.py::test_empty: @pytest.mark.clause needs clause ids*",
    ])
    assert "test_known" not in result.stderr.str()


def test_a_run_records_each_tests_clauses_and_outcome_for_the_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results_file = pytester.path / "out" / "results.json"
    result = _run_inner(pytester, monkeypatch, """
import pytest

@pytest.mark.clause("2.3")
@pytest.mark.parametrize("n", [1, 2])
def test_passes(n):
    assert n in (1, 2)

@pytest.mark.clause("6.7b", "2.3")
def test_fails():
    assert 1 + 1 == 3

@pytest.mark.clause("6.3")
def test_skips():
    pytest.skip("not built")

@pytest.mark.clause("6.4b")
def test_passes_but_its_teardown_fails(broken_teardown):
    pass

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown")

def test_unmarked():
    pass
""", "--clause-results", str(results_file))
    result.assert_outcomes(passed=4, failed=1, skipped=1, errors=1)
    recorded = json.loads(results_file.read_text())
    assert recorded["ros_distro"] == "jazzy" and recorded["exit_status"] == 1
    outcomes = {t["nodeid"].split("::")[1]: (t["clauses"], t["outcome"]) for t in recorded["tests"]}
    assert outcomes == {
        "test_passes[1]": (["2.3"], "passed"),
        "test_passes[2]": (["2.3"], "passed"),
        "test_fails": (["6.7b", "2.3"], "failed"),
        "test_skips": (["6.3"], "skipped"),
        "test_passes_but_its_teardown_fails": (["6.4b"], "failed"),
        "test_unmarked": ([], "passed"),
    }

    clauses = load_clauses(CLAUSES_FILE)
    statuses = {s.clause.id: s for s in clause_statuses(clauses, load_results(results_file, clauses))}
    assert not statuses["2.3"].is_gap and statuses["2.3"].failed == 1
    assert statuses["6.7b"].is_gap and statuses["6.3"].is_gap and statuses["6.4b"].is_gap
    report_file = pytester.path / "compliance.md"
    assert main([str(results_file), "--out", str(report_file)]) == 0
    gaps = _gaps_section(report_file.read_text())
    assert "6.3 " in gaps and "6.4b " in gaps and "6.7b " in gaps and "2.3 " not in gaps
    assert "gaps: " in capsys.readouterr().out


def test_a_missing_results_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "none.json"), "--out", str(tmp_path / "c.md")]) == 2
    assert "an unknown clause marker stops it" in capsys.readouterr().err
    assert not (tmp_path / "c.md").exists()
    broken = tmp_path / "clauses.yaml"
    broken.write_text(yaml.safe_dump(_document(id="bad")), encoding="utf-8")
    assert main([str(tmp_path / "none.json"), "--clauses", str(broken), "--out", str(tmp_path / "c.md")]) == 2
    assert "field 'id' must be a clause number" in capsys.readouterr().err
