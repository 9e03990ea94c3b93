"""ROS 2 name rules for namespaces given on the command line (validated before rcl sees them)."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\Z")


class InvalidNamespaceError(ValueError):
    """Not a valid ROS 2 namespace."""


NameError_ = InvalidNamespaceError  # the former name, until cli/run_commands.py and its test use the new one


def validate_namespace(namespace: str) -> str:
    """Return the absolute form of ``namespace`` (``robot1`` -> ``/robot1``) or raise :class:`InvalidNamespaceError`."""
    text = namespace if namespace.startswith("/") else f"/{namespace}"
    if text != "/" and text.endswith("/"):
        raise InvalidNamespaceError(f"{namespace!r} must not end with '/'")
    tokens = text.split("/")[1:] if text != "/" else []
    for token in tokens:
        if not _TOKEN.fullmatch(token) or "__" in token:
            raise InvalidNamespaceError(
                f"{namespace!r}: each part must start with a letter and hold only letters, digits "
                "and single underscores"
            )
    return text
