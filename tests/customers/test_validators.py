import random

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.no import orgnr as stdnum_orgnr

from customers.validators import (
    normalize_organisation_number,
    organisation_number_check_digit,
    validate_organisation_number,
)


@pytest.mark.parametrize(
    "number",
    [
        "923609016",  # Equinor ASA
        "974760673",  # Brønnøysundregistrene
        "923 609 016",
        "NO 923 609 016 MVA",
        "985.399.077",
    ],
)
def test_real_organisation_numbers_are_valid(number: str) -> None:
    validate_organisation_number(number)


@pytest.mark.parametrize("number", ["923609017", "974760670", "985399078"])
def test_a_wrong_check_digit_is_refused_with_its_reason(number: str) -> None:
    with pytest.raises(ValidationError) as error:
        validate_organisation_number(number)
    assert error.value.code == "organisation_number_check_digit"
    assert "check digit" in str(error.value.messages[0])


@pytest.mark.parametrize("number", ["92360901", "9236090160", "", "ABCDEFGHI", "12345"])
def test_a_wrong_length_is_refused_with_its_reason(number: str) -> None:
    with pytest.raises(ValidationError) as error:
        validate_organisation_number(number)
    assert error.value.code == "organisation_number_length"


def test_normalising_strips_what_people_type_around_the_digits() -> None:
    assert normalize_organisation_number(" no 923.609-016 mva ") == "923609016"


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_every_number_is_valid_with_exactly_its_computed_check_digit(first_eight: str) -> None:
    check = organisation_number_check_digit(first_eight)
    for digit in range(10):
        candidate = f"{first_eight}{digit}"
        if check == digit:
            validate_organisation_number(candidate)
        else:
            with pytest.raises(ValidationError):
                validate_organisation_number(candidate)


# The oracle for python-stdnum: the Brønnøysund rule written out (customers.validators keeps it to
# make numbers for the demo set and the factories), which the library must agree with on any nine
# digits. Both say valid for exactly the numbers whose last digit is the check digit of the first eight.
def valid_by_the_written_rule(number: str) -> bool:
    return organisation_number_check_digit(number[:8]) == int(number[8])


@settings(max_examples=3000)
@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_python_stdnum_agrees_with_the_written_rule(number: str) -> None:
    assert stdnum_orgnr.is_valid(number) == valid_by_the_written_rule(number)
    try:
        validate_organisation_number(number)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert accepted == valid_by_the_written_rule(number)


def test_python_stdnum_agrees_with_the_written_rule_on_200_000_random_numbers() -> None:
    generator = random.Random(2026)
    numbers = [f"{generator.randrange(10**9):09d}" for _ in range(200_000)]
    disagreements = [n for n in numbers if stdnum_orgnr.is_valid(n) != valid_by_the_written_rule(n)]
    assert disagreements == []
    # Enough of both kinds to mean something: about one number in eleven is valid.
    assert 15_000 < sum(map(valid_by_the_written_rule, numbers)) < 22_000


@pytest.mark.parametrize("number", ["٩٢٣٦٠٩٠١٦", "９２３６０９０１６", "92360901６"])
def test_only_ascii_digits_make_an_organisation_number(number: str) -> None:
    # Python's isdigit() and int() take every script's digits; the registry's numbers are ASCII.
    with pytest.raises(ValidationError) as error:
        validate_organisation_number(number)
    assert error.value.code == "organisation_number_length"
