"""Pytest plugin: tests name the Futian clause they verify, and a run can record which clauses passed.

A test that verifies a clause of docs/clauses.yaml says so::

    @pytest.mark.clause("6.7c")          # or several: @pytest.mark.clause("3.1b", "5.1a")

At collection every clause marker is checked against docs/clauses.yaml: a marker without a clause or
naming an unknown one stops the run with a usage error that names the test. With
``--clause-results FILE`` the plugin also writes each test's node id, clauses and outcome (passed,
failed, skipped) to FILE as JSON, which tools/compliance_report.py renders as docs/compliance.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from compliance_report import CLAUSES_FILE, CaseResult, load_clauses, results_document, utc_now


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clause-results", metavar="FILE", type=Path, default=None,
                     help="write each test's clauses and outcome to FILE (JSON) for tools/compliance_report.py")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clause(*ids): the test verifies these clauses of docs/clauses.yaml")
    config.pluginmanager.register(ClauseRecorder(config.getoption("--clause-results")), "clause-recorder")


def clause_marker_problems(items: list[pytest.Item], known: set[str]) -> list[str]:
    """One line per clause marker that names no clause (or an unknown one), naming the test."""
    problems: list[str] = []
    for item in items:
        for marker in item.iter_markers("clause"):
            if not marker.args or marker.kwargs:
                problems.append(f"{item.nodeid}: @pytest.mark.clause needs clause ids, e.g. clause(\"6.7c\")")
            problems += [f"{item.nodeid}: unknown clause {clause!r}" for clause in marker.args if clause not in known]
    return list(dict.fromkeys(problems))


class ClauseRecorder:
    """Checks the markers of every collected test; records the outcome of every test that runs."""

    def __init__(self, results_path: Path | None) -> None:
        self.results_path = results_path
        self.started = utc_now()
        self.results: dict[str, CaseResult] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        problems = clause_marker_problems(items, {clause.id for clause in load_clauses(CLAUSES_FILE)})
        if problems:
            raise pytest.UsageError(f"clause markers naming no clause of {CLAUSES_FILE}:\n  " + "\n  ".join(problems))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:  # after deselection: the tests that will run
            clauses = tuple(clause for marker in item.iter_markers("clause") for clause in marker.args)
            self.results[item.nodeid] = CaseResult(item.nodeid, clauses, "skipped")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        current = self.results.get(report.nodeid)
        if current is None or current.outcome == "failed":
            return
        if report.failed:
            outcome = "failed"  # in any phase, teardown included
        elif report.skipped:
            outcome = "skipped"
        elif report.when == "call":
            outcome = "passed"
        else:
            return
        self.results[report.nodeid] = CaseResult(current.nodeid, current.clauses, outcome)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.results_path is None or not self.results:
            return
        document = results_document(os.environ.get("FTROBOT_ROS_DISTRO", "unknown"), self.started, int(exitstatus),
                                    list(self.results.values()))
        self.results_path.parent.mkdir(parents=True, exist_ok=True)
        self.results_path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
