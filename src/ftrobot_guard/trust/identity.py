"""Robot-employee identity numbers, e.g. ``440304-RB-2026-000123-8``.

Layout (all parts separated by ``-``)::

    440304   GB/T 2260 administrative division code (440304 = Futian), 6 digits, not starting with 0
    RB       kind: robot employee (uppercase, literal)
    2026     year of registration, 2000..2099
    000123   serial within division and year, 000001..999999
    8        ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') over the 16 digits
             division + year + serial ("4403042026000123"), computed like the check character
             of a resident identity number (GB 11643).

Parsing is strict: no surrounding whitespace, no lowercase ``x``/``rb``, no missing or extra
parts. Every failure is an :class:`IdentityNumberError` whose one-line message says which part
is wrong and, for a wrong check character, which one was expected.
"""

from __future__ import annotations

from dataclasses import dataclass

KIND_ROBOT_EMPLOYEE = "RB"
YEAR_MIN = 2000
YEAR_MAX = 2099
SERIAL_MIN = 1
SERIAL_MAX = 999_999
IDENTITY_NUMBER_LENGTH = 23  # "440304-RB-2026-000123-8"

_DIGITS = frozenset("0123456789")


class IdentityNumberError(ValueError):
    """An identity number (or one of its parts) is malformed or fails its check character."""


def _is_digits(text: str) -> bool:
    # str.isdigit() accepts non-ASCII digits such as "٣" or "²"; only ASCII digits are valid here.
    return bool(text) and all(ch in _DIGITS for ch in text)


def check_character(digits: str) -> str:
    """ISO 7064 MOD 11-2 check character over ``digits`` (ASCII digits only).

    Digit ``i`` (0-based, from the left) of an ``n``-digit string has weight ``2**(n-i) mod 11``;
    the check value is ``(12 - sum mod 11) mod 11`` and 10 is written ``X``. For the 17 digits of
    a resident identity number this is exactly the GB 11643 check character.
    """
    if not _is_digits(digits):
        raise IdentityNumberError(f"check character input {digits!r} must be a non-empty string of ASCII digits")
    n = len(digits)
    total = 0
    for i, ch in enumerate(digits):
        total += (ord(ch) - 48) * pow(2, n - i, 11)
    value = (12 - total % 11) % 11
    return "X" if value == 10 else chr(48 + value)


def _validate_division_code(division_code: str) -> None:
    if not isinstance(division_code, str) or len(division_code) != 6 or not _is_digits(division_code):
        raise IdentityNumberError(f"division code {division_code!r} must be exactly 6 ASCII digits (e.g. 440304)")
    if division_code[0] == "0":
        raise IdentityNumberError(f"division code {division_code!r} must not start with 0 (GB/T 2260)")


def _validate_year(year: int) -> None:
    if isinstance(year, bool) or not isinstance(year, int):
        raise IdentityNumberError(f"year {year!r} must be an integer")
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise IdentityNumberError(f"year {year} out of range {YEAR_MIN}..{YEAR_MAX}")


def _validate_serial(serial: int) -> None:
    if isinstance(serial, bool) or not isinstance(serial, int):
        raise IdentityNumberError(f"serial {serial!r} must be an integer")
    if not SERIAL_MIN <= serial <= SERIAL_MAX:
        raise IdentityNumberError(f"serial {serial} out of range {SERIAL_MIN:06d}..{SERIAL_MAX:06d}")


@dataclass(frozen=True)
class IdentityNumber:
    """A validated robot-employee identity number; ``str()`` gives the canonical text."""

    division_code: str
    year: int
    serial: int
    check: str

    def __post_init__(self) -> None:
        _validate_division_code(self.division_code)
        _validate_year(self.year)
        _validate_serial(self.serial)
        expected = check_character(self.check_digits)
        if self.check != expected:
            raise IdentityNumberError(
                f"check character {self.check!r} of {self.division_code}-{KIND_ROBOT_EMPLOYEE}-{self.year}-"
                f"{self.serial:06d} is wrong: expected {expected!r}"
            )

    @property
    def check_digits(self) -> str:
        """The 16 digits the check character is computed over (division + year + serial)."""
        return f"{self.division_code}{self.year:04d}{self.serial:06d}"

    def __str__(self) -> str:
        return f"{self.division_code}-{KIND_ROBOT_EMPLOYEE}-{self.year:04d}-{self.serial:06d}-{self.check}"


def make_identity_number(division_code: str, year: int, serial: int) -> IdentityNumber:
    """Build an identity number, computing its check character."""
    _validate_division_code(division_code)
    _validate_year(year)
    _validate_serial(serial)
    check = check_character(f"{division_code}{year:04d}{serial:06d}")
    return IdentityNumber(division_code, year, serial, check)


def parse_identity_number(text: str) -> IdentityNumber:
    """Parse and validate ``text`` such as ``440304-RB-2026-000123-8``.

    Raises :class:`IdentityNumberError` naming the wrong part.
    """
    if not isinstance(text, str):
        raise IdentityNumberError(f"identity number must be a string, got {type(text).__name__}")
    if text != text.strip():
        raise IdentityNumberError(f"identity number {text!r} has leading or trailing whitespace")
    if not text:
        raise IdentityNumberError("identity number is empty (expected e.g. 440304-RB-2026-000123-8)")
    if not text.isascii() or not text.isprintable():
        raise IdentityNumberError(f"identity number {text!r} contains non-ASCII or control characters")
    parts = text.split("-")
    if len(parts) != 5:
        raise IdentityNumberError(
            f"identity number {text!r} must have 5 parts separated by '-' (DIVISION-RB-YEAR-SERIAL-CHECK),"
            f" found {len(parts)}"
        )
    division, kind, year_text, serial_text, check = parts
    _validate_division_code(division)
    if kind != KIND_ROBOT_EMPLOYEE:
        raise IdentityNumberError(f"kind {kind!r} in {text!r} must be {KIND_ROBOT_EMPLOYEE!r} (robot employee)")
    if len(year_text) != 4 or not _is_digits(year_text):
        raise IdentityNumberError(f"year {year_text!r} in {text!r} must be 4 ASCII digits")
    _validate_year(int(year_text))
    if len(serial_text) != 6 or not _is_digits(serial_text):
        raise IdentityNumberError(f"serial {serial_text!r} in {text!r} must be 6 ASCII digits")
    _validate_serial(int(serial_text))
    if len(check) != 1 or not (check in _DIGITS or check == "X"):
        raise IdentityNumberError(
            f"check character {check!r} in {text!r} must be one character '0'-'9' or uppercase 'X'"
        )
    expected = check_character(division + year_text + serial_text)
    if check != expected:
        raise IdentityNumberError(f"check character {check!r} in {text!r} is wrong: expected {expected!r}")
    return IdentityNumber(division, int(year_text), int(serial_text), check)
