#!/usr/bin/env python3
"""Render docs/compliance.md: for each robot-side clause of the Futian measures, what the software does,
which tests verify it and whether they passed; clauses without a passing test are listed as gaps.

Inputs:
- the clause list, ``docs/clauses.yaml`` (the project's reading of the measures; :func:`load_clauses`);
- the outcomes of a test run, written by the suite's clause plugin (``tests/clause_traceability.py``)
  when pytest runs with ``--clause-results FILE`` (:func:`load_results`).

``make compliance`` runs both steps. This is a development tool, not runtime code: it lives in tools/,
needs only PyYAML, and is tested by tests/test_compliance_report.py.

    python tools/compliance_report.py RESULTS.json [--clauses docs/clauses.yaml] [--out docs/compliance.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CLAUSES_FILE = REPO / "docs" / "clauses.yaml"
REPORT_FILE = REPO / "docs" / "compliance.md"
RESULTS_FORMAT = "ftrobot-clause-results"
RESULTS_VERSION = 1
OUTCOMES = ("passed", "failed", "skipped")

_CLAUSE_ID = re.compile(r"\d{1,2}\.\d{1,2}[a-z]?\Z")
_CLAUSE_KEYS = {"id", "title", "says", "software", "planned"}


class ClauseListError(ValueError):
    """The clause list is malformed; the message names the clause and field."""


class ResultsError(ValueError):
    """A results file is missing, malformed or names an unknown clause."""


@dataclass(frozen=True)
class Clause:
    id: str
    title: str
    says: str
    software: tuple[str, ...]  # what the software does for it today
    planned: tuple[str, ...]  # what the safety core will add


@dataclass(frozen=True)
class CaseResult:
    nodeid: str
    clauses: tuple[str, ...]
    outcome: str  # one of OUTCOMES

    @property
    def function(self) -> str:
        """The test function's node id, without the parameters of one case."""
        return self.nodeid.split("[", 1)[0]


@dataclass(frozen=True)
class SuiteRun:
    ros_distro: str
    started: str  # ISO 8601, UTC
    exit_status: int
    tests: tuple[CaseResult, ...]


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ClauseListError(f"{where}: field {key!r} must be a non-empty string")
    return " ".join(value.split())


def _texts(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ClauseListError(f"{where}: field {key!r} must be a list of non-empty strings")
    return tuple(" ".join(item.split()) for item in value)


def parse_clauses(document: Any, source: str = "clause list") -> list[Clause]:
    """The clauses of a parsed clause-list document, validated: ids well-formed and unique, every field."""
    if not isinstance(document, dict) or not isinstance(document.get("clauses"), list) or not document["clauses"]:
        raise ClauseListError(f"{source}: expected a mapping with a non-empty list 'clauses'")
    clauses: list[Clause] = []
    seen: set[str] = set()
    for index, entry in enumerate(document["clauses"]):
        where = f"{source}: clause #{index + 1}"
        if not isinstance(entry, dict):
            raise ClauseListError(f"{where}: not a mapping")
        unknown = sorted(set(entry) - _CLAUSE_KEYS, key=str)
        if unknown:
            raise ClauseListError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")
        clause_id = entry.get("id")
        if not isinstance(clause_id, str) or not _CLAUSE_ID.match(clause_id):
            raise ClauseListError(f"{where}: field 'id' must be a clause number such as \"6.7c\", not {clause_id!r}")
        where = f"{source}: clause {clause_id}"
        if clause_id in seen:
            raise ClauseListError(f"{where}: listed twice")
        seen.add(clause_id)
        clauses.append(Clause(clause_id, _text(entry, "title", where), _text(entry, "says", where),
                              _texts(entry, "software", where), _texts(entry, "planned", where)))
    return clauses


def load_clauses(path: Path = CLAUSES_FILE) -> list[Clause]:
    """Read and validate the clause list (docs/clauses.yaml)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClauseListError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ClauseListError(f"{path}: not YAML: {exc}") from None
    return parse_clauses(document, str(path))


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def results_document(ros_distro: str, started: str, exit_status: int, tests: Sequence[CaseResult]) -> dict[str, Any]:
    """The JSON document the clause plugin writes and :func:`load_results` reads."""
    return {
        "format": RESULTS_FORMAT,
        "version": RESULTS_VERSION,
        "ros_distro": ros_distro,
        "started": started,
        "exit_status": exit_status,
        "tests": [{"nodeid": t.nodeid, "clauses": list(t.clauses), "outcome": t.outcome} for t in tests],
    }


def parse_results(document: Any, known: set[str], source: str = "results") -> SuiteRun:
    """A test run from its JSON document; a clause not in ``known`` is an error naming the test."""
    if not isinstance(document, dict) or document.get("format") != RESULTS_FORMAT:
        raise ResultsError(f"{source}: not a {RESULTS_FORMAT} document")
    if document.get("version") != RESULTS_VERSION:
        raise ResultsError(f"{source}: version {document.get('version')!r} (this tool reads {RESULTS_VERSION})")
    tests = document.get("tests")
    if not isinstance(tests, list):
        raise ResultsError(f"{source}: field 'tests' must be a list")
    outcomes: list[CaseResult] = []
    for entry in tests:
        if not (isinstance(entry, dict) and isinstance(entry.get("nodeid"), str)
                and isinstance(entry.get("clauses"), list) and all(isinstance(c, str) for c in entry["clauses"])
                and entry.get("outcome") in OUTCOMES):
            raise ResultsError(f"{source}: malformed test entry {entry!r}")
        for clause in entry["clauses"]:
            if clause not in known:
                raise ResultsError(f"{source}: {entry['nodeid']} names unknown clause {clause!r}")
        outcomes.append(CaseResult(entry["nodeid"], tuple(entry["clauses"]), entry["outcome"]))
    distro, started, status = document.get("ros_distro"), document.get("started"), document.get("exit_status")
    if not isinstance(distro, str) or not isinstance(started, str) or not isinstance(status, int):
        raise ResultsError(f"{source}: fields 'ros_distro', 'started' and 'exit_status' are required")
    return SuiteRun(distro, started, status, tuple(outcomes))


def load_results(path: Path, clauses: Sequence[Clause]) -> SuiteRun:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"{path}: {exc.strerror} (did the test run start? an unknown clause marker stops it)") \
            from None
    except ValueError as exc:
        raise ResultsError(f"{path}: not JSON: {exc}") from None
    return parse_results(document, {c.id for c in clauses}, str(path))


@dataclass(frozen=True)
class ClauseStatus:
    clause: Clause
    tests: dict[str, list[CaseResult]]  # test function -> its cases

    def count(self, outcome: str) -> int:
        return sum(1 for cases in self.tests.values() for case in cases if case.outcome == outcome)

    @property
    def passed(self) -> int:
        return self.count("passed")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def is_gap(self) -> bool:
        return self.passed == 0

    @property
    def status(self) -> str:
        if self.is_gap:
            return "**gap**"
        if self.failed:
            return "**failing**"
        return "verified, more planned" if self.clause.planned else "verified"


def clause_statuses(clauses: Sequence[Clause], run: SuiteRun) -> list[ClauseStatus]:
    by_clause: dict[str, dict[str, list[CaseResult]]] = {c.id: defaultdict(list) for c in clauses}
    for test in run.tests:
        for clause_id in dict.fromkeys(test.clauses):
            by_clause[clause_id][test.function].append(test)
    return [ClauseStatus(c, dict(by_clause[c.id])) for c in clauses]


def _cases(cases: list[CaseResult]) -> str:
    outcomes = [case.outcome for case in cases]
    if len(outcomes) == 1:
        return outcomes[0]
    summary = ", ".join(f"{outcomes.count(o)} {o}" for o in OUTCOMES if o in outcomes)
    return f"{len(outcomes)} cases: {summary}"


def _gap_reason(status: ClauseStatus) -> str:
    if status.failed:
        return f"its tests fail ({status.failed} failing case(s))"
    if status.tests:
        return "its tests did not pass (skipped)"
    if not status.clause.software:
        return "nothing built for it yet; it waits for the safety core"
    return "no test verifies it yet"


def _distribution(name: str) -> str:
    return f"ROS 2 {name.capitalize()}" if name != "unknown" else "ROS 2 distribution not recorded"


def render(clauses: Sequence[Clause], run: SuiteRun, commit: str = "") -> str:
    """docs/compliance.md as Markdown."""
    statuses = clause_statuses(clauses, run)
    gaps = [s for s in statuses if s.is_gap]
    counts = {o: sum(1 for t in run.tests if t.outcome == o) for o in OUTCOMES}
    marked = sum(1 for t in run.tests if t.clauses)
    lines = [
        "# Compliance: the Futian measures' robot-side clauses, the software and its tests",
        "",
        "Generated by `make compliance`; do not edit by hand. The clauses and what the software does for each are",
        "kept in [clauses.yaml](clauses.yaml) (the original text: `../shared/regulation/`); a test names the clause it",
        "verifies with `@pytest.mark.clause(\"…\")`. A clause is a **gap** when no test of it passed.",
        "",
        f"Test run: {_distribution(run.ros_distro)}, started {run.started}"
        + (f", commit {commit}" if commit else "")
        + f"; {len(run.tests)} tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        + f" (pytest exit status {run.exit_status}); {marked} tests name a clause.",
        "",
        f"**{len(statuses) - len(gaps)} of {len(statuses)} clauses verified by passing tests; {len(gaps)} gaps.**",
        "",
        "| clause | title | tests passed | status |",
        "|---|---|---|---|",
    ]
    for s in statuses:
        total = sum(len(cases) for cases in s.tests.values())
        lines.append(f"| {s.clause.id} | {s.clause.title} | {s.passed}/{total} | {s.status} |")
    lines += ["", "## Gaps", ""]
    if not gaps:
        lines.append("None: every clause has at least one passing test.")
    for s in gaps:
        lines.append(f"- **{s.clause.id} {s.clause.title}**: {_gap_reason(s)}."
                     + (f" Planned: {' '.join(s.clause.planned)}" if s.clause.planned else ""))
    lines += ["", "## Clauses", ""]
    for s in statuses:
        lines += [f"### {s.clause.id} {s.clause.title}", "", f"*Asks:* {s.clause.says}", ""]
        lines.append("*The software does:*" if s.clause.software else "*The software does:* nothing yet.")
        lines += [f"- {item}" for item in s.clause.software]
        if s.clause.planned:
            lines += ["", "*Planned (safety core, not built yet):*"] + [f"- {item}" for item in s.clause.planned]
        lines += ["", f"*Tests ({s.status.strip('*')}):*" if s.tests else "*Tests:* none."]
        lines += [f"- `{function}`: {_cases(cases)}" for function, cases in sorted(s.tests.items())]
        lines.append("")
    return "\n".join(lines)


def _git_commit() -> str:
    try:
        sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{sha} with local changes" if dirty else sha


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("results", type=Path, help="JSON written by pytest --clause-results")
    parser.add_argument("--clauses", type=Path, default=CLAUSES_FILE, help="the clause list (YAML)")
    parser.add_argument("--out", type=Path, default=REPORT_FILE, help="the Markdown report to write")
    args = parser.parse_args(argv)
    try:
        clauses = load_clauses(args.clauses)
        run = load_results(args.results, clauses)
    except (ClauseListError, ResultsError) as exc:
        print(f"compliance_report: error: {exc}", file=sys.stderr)
        return 2
    report = render(clauses, run, _git_commit())
    args.out.write_text(report, encoding="utf-8")
    gaps = [s.clause.id for s in clause_statuses(clauses, run) if s.is_gap]
    verified = len(clauses) - len(gaps)
    print(f"{args.out}: {verified} of {len(clauses)} clauses verified; gaps: {', '.join(gaps) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
