"""Auditor commands (being written)."""


def register(subparsers: object) -> None:
    return None
