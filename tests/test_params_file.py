"""ROS 2 params files: strict checks with the file and field named; rcl's node matching rules."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.ros.params_file import ParamsFileError, load_params_file, node_parameters

names = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
scalars = st.one_of(
    st.booleans(), st.integers(-(2**31), 2**31), st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(names, scalars, min_size=1, max_size=8))
def test_round_trip_of_scalar_parameters(tmp_path_factory: pytest.TempPathFactory, params: dict[str, object]) -> None:
    import yaml

    path = tmp_path_factory.mktemp("p") / "p.yaml"
    path.write_text(yaml.safe_dump({"/**/node": {"ros__parameters": params}}), encoding="utf-8")
    loaded = node_parameters([load_params_file(path)], "node", "/any/ns")
    assert loaded == params


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_a_params_file_or_a_clear_error(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("p") / "p.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_params_file(path)
    except ParamsFileError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("a: [1\n", "not valid YAML"),
        ("- 1\n", "expected a mapping of node names"),
        ("n:\n  ros__parameters:\n    x: .inf\n", "n: x: inf is not a finite number"),
        ("n:\n  ros__parameters:\n    x: []\n", "n: x: empty lists"),
        ("n:\n  ros__parameters:\n    x: [1, 'a']\n", "n: x: a list must hold values of one type"),
        ("n:\n  ros__parameters:\n    x: ~\n", "n: x: has no value"),
        ("n:\n  ros__parameters:\n    y:\n      x: ~\n", "n: y.x: has no value"),
        ("n:\n  ros__parameters: 3\n", "n.ros__parameters: expected a mapping"),
    ],
)
def test_malformed_files_name_the_field(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParamsFileError) as info:
        load_params_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and fragment in message and "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ParamsFileError, match="no such parameter file"):
        load_params_file(tmp_path / "nope.yaml")


def test_matching_follows_rcl(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "/**:\n  ros__parameters: {a: 1, b: 1, c: 1}\n"
        "/**/hb:\n  ros__parameters: {b: 2, c: 2}\n"
        "/r1/hb:\n  ros__parameters: {c: 3}\n"
        "hb:\n  ros__parameters: {d: 4}\n",
        encoding="utf-8",
    )
    files = [load_params_file(path)]
    assert node_parameters(files, "hb", "/r1") == {"a": 1, "b": 2, "c": 3}
    assert node_parameters(files, "hb", "/r2") == {"a": 1, "b": 2, "c": 2}
    assert node_parameters(files, "hb", "/") == {"a": 1, "b": 2, "c": 2, "d": 4}
    assert node_parameters(files, "other", "/r1") == {"a": 1, "b": 1, "c": 1}


def test_int_and_float_lists_become_floats(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("n:\n  ros__parameters:\n    gains: [1, 2.5]\n", encoding="utf-8")
    values = node_parameters([load_params_file(path)], "n")
    assert values["gains"] == [1.0, 2.5] and all(isinstance(v, float) and math.isfinite(v) for v in values["gains"])
