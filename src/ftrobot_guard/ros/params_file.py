"""ROS 2 YAML parameter files, read and checked before any node starts.

The files are the ones `ros2 launch` and `--params-file` take::

    /**:                      # every node
      ros__parameters: {...}
    /**/heartbeat:            # a node by name, in any namespace
      ros__parameters: {...}
    /robot1/heartbeat:        # a node by fully qualified name ('heartbeat:' means '/heartbeat')
      ros__parameters: {...}

:func:`node_parameters` merges them for one node the way rcl does (wildcards first, then the node's
own section), so a malformed file is reported in one line naming the file and the field before
anything has been started.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ParameterValue = bool | int | float | str | list[bool] | list[int] | list[float] | list[str]


class ParamsFileError(Exception):
    """A parameter file is missing, not YAML, or not shaped like a ROS 2 parameter file."""


@dataclass(frozen=True)
class ParamsFile:
    path: Path
    sections: Mapping[str, Mapping[str, ParameterValue]]  # node key -> flattened parameters


def _flatten(prefix: str, value: Any, path: str, out: dict[str, ParameterValue]) -> None:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            if not isinstance(key, str) or not key:
                raise ParamsFileError(f"{path}: {prefix or '<root>'}: parameter names must be non-empty strings")
            _flatten(f"{prefix}.{key}" if prefix else key, sub, path, out)
        return
    out[prefix] = _check_value(prefix, value, path)


def _check_value(name: str, value: Any, path: str) -> ParameterValue:
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamsFileError(f"{path}: {name}: {value} is not a finite number")
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        if not value:
            raise ParamsFileError(f"{path}: {name}: empty lists have no type in ROS 2; omit the parameter instead")
        kinds = {bool if isinstance(v, bool) else type(v) for v in value}
        if kinds == {int, float}:
            value = [float(v) for v in value]
            kinds = {float}
        if len(kinds) != 1 or next(iter(kinds)) not in (bool, int, float, str):
            raise ParamsFileError(f"{path}: {name}: a list must hold values of one type (bool, int, float or str)")
        for item in value:
            if isinstance(item, float) and not math.isfinite(item):
                raise ParamsFileError(f"{path}: {name}: {item} is not a finite number")
        return list(value)
    if value is None:
        raise ParamsFileError(f"{path}: {name}: has no value")
    raise ParamsFileError(f"{path}: {name}: unsupported value of type {type(value).__name__}")


def load_params_file(path: str | Path) -> ParamsFile:
    """Read and check a ROS 2 parameter file; raise :class:`ParamsFileError` with file and field."""
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsFileError(f"{target}: no such parameter file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsFileError(f"{target}: cannot read: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamsFileError(f"{target}: {where}not valid YAML ({problem})") from None
    if not isinstance(document, Mapping) or not document:
        raise ParamsFileError(f"{target}: expected a mapping of node names to 'ros__parameters'")
    sections: dict[str, dict[str, ParameterValue]] = {}
    for node_key, body in document.items():
        if not isinstance(node_key, str) or not node_key:
            raise ParamsFileError(f"{target}: node names must be non-empty strings, found {node_key!r}")
        if not isinstance(body, Mapping) or set(body) != {"ros__parameters"}:
            raise ParamsFileError(f"{target}: {node_key}: expected exactly one key 'ros__parameters'")
        params = body["ros__parameters"]
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ParamsFileError(f"{target}: {node_key}.ros__parameters: expected a mapping")
        flat: dict[str, ParameterValue] = {}
        _flatten("", params, f"{target}: {node_key}", flat)
        sections[node_key] = flat
    return ParamsFile(target, sections)


def _matches(node_key: str, node_name: str, namespace: str) -> bool:
    """rcl's rule: a key is a fully qualified node name ('/' implied), '/**' matching any namespace."""
    key = node_key.strip()
    if key in ("/**", "**"):
        return True
    if not key.startswith("/"):
        key = f"/{key}"
    fqn = f"{namespace.rstrip('/')}/{node_name}" if namespace not in ("", "/") else f"/{node_name}"
    if key.startswith("/**/"):
        return key[4:] == node_name
    return key == fqn


def node_parameters(files: list[ParamsFile], node_name: str, namespace: str = "/") -> dict[str, ParameterValue]:
    """Parameters for one node: wildcard sections first, then name, then fully qualified name."""
    merged: dict[str, ParameterValue] = {}
    for params_file in files:
        ranked = sorted(
            (key for key in params_file.sections if _matches(key, node_name, namespace)),
            key=lambda key: 0 if key.strip() in ("/**", "**") else (1 if key.startswith("/**/") else 2),
        )
        for key in ranked:
            merged.update(params_file.sections[key])
    return merged
