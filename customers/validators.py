"""Norwegian organisation numbers (organisasjonsnummer).

Nine digits; the last is a modulus-11 check digit over the first eight with the weights
3, 2, 7, 6, 5, 4, 3, 2 (Brønnøysundregistrene). A remainder that gives check digit 10 means the
number cannot exist.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

ORGANISATION_NUMBER_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def normalize_organisation_number(value: str) -> str:
    """Strip what people type around the digits: spaces, dots, 'NO' prefix, 'MVA' suffix."""
    cleaned = re.sub(r"[\s.\-]", "", value or "").upper()
    cleaned = cleaned.removeprefix("NO").removesuffix("MVA")
    return cleaned


def organisation_number_check_digit(first_eight: str) -> int | None:
    """The check digit for eight digits, or None when no valid number starts with them."""
    total = sum(
        int(digit) * weight for digit, weight in zip(first_eight, ORGANISATION_NUMBER_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def validate_organisation_number(value: str) -> None:
    number = normalize_organisation_number(value)
    if not (number.isascii() and number.isdigit()) or len(number) != 9:  # ASCII: isdigit takes any script
        raise ValidationError(
            _("An organisation number has exactly 9 digits; %(value)s has %(count)d."),
            code="organisation_number_length",
            params={"value": value, "count": sum(ch in "0123456789" for ch in number)},
        )
    if organisation_number_check_digit(number[:8]) != int(number[8]):
        raise ValidationError(
            _("%(value)s is not a valid organisation number: the check digit does not match."),
            code="organisation_number_check_digit",
            params={"value": value},
        )
