"""Identity numbers: format, ISO 7064 MOD 11-2 check character, strict parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.trust.identity import (
    IdentityNumber,
    IdentityNumberError,
    check_character,
    make_identity_number,
    parse_identity_number,
)

EXAMPLE = "440304-RB-2026-000123-8"

divisions = st.integers(100000, 999999).map(str)
years = st.integers(2000, 2099)
serials = st.integers(1, 999999)


@pytest.mark.clause("2.3")
def test_resident_id_check_characters_from_public_examples() -> None:
    # GB 11643 examples: the MOD 11-2 check character of a resident identity number.
    assert check_character("11010519491231002") == "X"
    assert check_character("44052418800101001") == "4"


@pytest.mark.clause("2.3")
def test_design_example_parses() -> None:
    number = parse_identity_number(EXAMPLE)
    assert number == IdentityNumber("440304", 2026, 123, "8")
    assert number.check_digits == "4403042026000123"
    assert str(number) == EXAMPLE


@pytest.mark.clause("2.3")
def test_make_computes_the_check_character() -> None:
    assert str(make_identity_number("440304", 2026, 123)) == EXAMPLE
    assert str(make_identity_number("440304", 2026, 1)).startswith("440304-RB-2026-000001-")


@pytest.mark.clause("2.3")
def test_check_value_ten_is_written_x() -> None:
    found = next(
        make_identity_number("440304", 2026, serial)
        for serial in range(1, 100)
        if make_identity_number("440304", 2026, serial).check == "X"
    )
    assert parse_identity_number(str(found)).check == "X"
    with pytest.raises(IdentityNumberError, match="uppercase 'X'"):
        parse_identity_number(str(found)[:-1] + "x")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("440304-RB-2026-000123-7", "expected '8'"),
        ("440304-rb-2026-000123-8", "kind 'rb'"),
        ("440304-RC-2026-000123-8", "kind 'RC'"),
        ("040304-RB-2026-000123-8", "must not start with 0"),
        ("44030-RB-2026-000123-8", "6 ASCII digits"),
        ("440304-RB-1999-000123-8", "year 1999 out of range"),
        ("440304-RB-2100-000123-8", "year 2100 out of range"),
        ("440304-RB-26-000123-8", "4 ASCII digits"),
        ("440304-RB-2026-000000-8", "serial 0 out of range"),
        ("440304-RB-2026-123-8", "6 ASCII digits"),
        ("440304-RB-2026-000123", "5 parts"),
        ("440304-RB-2026-000123-8-1", "5 parts"),
        ("440304RB2026000123-8", "5 parts"),
        ("", "empty"),
        (" " + EXAMPLE, "whitespace"),
        (EXAMPLE + "\n", "whitespace"),
        ("440304-RB-2026-00012３-8", "non-ASCII"),
        ("440304-RB-2026-000123-88", "one character"),
    ],
)
@pytest.mark.clause("2.3")
def test_malformed_numbers_are_refused_with_the_wrong_part_named(text: str, fragment: str) -> None:
    with pytest.raises(IdentityNumberError, match=fragment):
        parse_identity_number(text)


def test_error_is_a_value_error_and_one_line() -> None:
    with pytest.raises(ValueError) as info:
        parse_identity_number("440304-RB-2026-000123-7")
    assert "\n" not in str(info.value)


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(IdentityNumberError, match="must be a string"):
        parse_identity_number(440304)  # type: ignore[arg-type]


def test_dataclass_refuses_inconsistent_parts() -> None:
    with pytest.raises(IdentityNumberError, match="expected '8'"):
        IdentityNumber("440304", 2026, 123, "7")
    with pytest.raises(IdentityNumberError, match="serial"):
        make_identity_number("440304", 2026, 1_000_000)
    with pytest.raises(IdentityNumberError, match="year"):
        make_identity_number("440304", True, 1)  # type: ignore[arg-type]


def test_check_character_refuses_non_digits() -> None:
    for bad in ("", "12a4", "１２"):
        with pytest.raises(IdentityNumberError):
            check_character(bad)


@settings(max_examples=200, deadline=None)
@given(divisions, years, serials)
@pytest.mark.clause("2.3")
def test_round_trip_make_str_parse(division: str, year: int, serial: int) -> None:
    number = make_identity_number(division, year, serial)
    assert parse_identity_number(str(number)) == number
    assert len(str(number)) == 23


ALPHABET = "0123456789XRBxrb- aé٣\t"


@settings(max_examples=200, deadline=None)
@given(divisions, years, serials, st.data())
@pytest.mark.clause("2.3")
def test_any_single_character_substitution_is_rejected(division: str, year: int, serial: int, data: st.DataObject) -> None:
    text = str(make_identity_number(division, year, serial))
    position = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.sampled_from(ALPHABET).filter(lambda ch: ch != text[position]))
    mutated = text[:position] + replacement + text[position + 1 :]
    with pytest.raises(IdentityNumberError):
        parse_identity_number(mutated)


@settings(max_examples=200, deadline=None)
@given(divisions, years, serials, st.data())
@pytest.mark.clause("2.3")
def test_any_adjacent_digit_transposition_is_rejected(division: str, year: int, serial: int, data: st.DataObject) -> None:
    text = str(make_identity_number(division, year, serial))
    digit_positions = [i for i in range(len(text) - 3) if text[i].isdigit() and text[i + 1].isdigit() and text[i] != text[i + 1]]
    if not digit_positions:
        return
    i = data.draw(st.sampled_from(digit_positions))
    mutated = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    with pytest.raises(IdentityNumberError):
        parse_identity_number(mutated)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.from_regex(r"[0-9]{6}-RB-[0-9]{4}-[0-9]{6}-[0-9X]", fullmatch=True)))
def test_random_strings_never_crash(text: str) -> None:
    try:
        number = parse_identity_number(text)
    except IdentityNumberError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert str(number) == text
