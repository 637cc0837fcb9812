"""Norwegian organisation numbers (organisasjonsnummer).

Nine digits; the last is a modulus-11 check digit over the first eight with the weights
3, 2, 7, 6, 5, 4, 3, 2 (Brønnøysundregistrene). A remainder that gives check digit 10 means the
number cannot exist.

python-stdnum (`stdnum.no.orgnr`) decides the check digit. Kept here: the normalisation (stdnum's
`compact` strips spaces only, people also type dots, dashes, "NO" and "MVA"), the ASCII-only
length check, the portal's own error messages, and `organisation_number_check_digit`, which makes
valid numbers for the demo set and the factories (stdnum only checks) and is the oracle stdnum is
tested against (tests/customers/test_validators.py).
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum.no import orgnr

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
    # ASCII digits only, checked here: Python's isdigit() takes every script's digits, and stdnum
    # folds fullwidth ones to ASCII (NFKD) and accepts them, while the stored number must be the
    # registry's nine ASCII digits.
    if not (number.isascii() and number.isdigit()) or len(number) != 9:
        raise ValidationError(
            _("An organisation number has exactly 9 digits; %(value)s has %(count)d."),
            code="organisation_number_length",
            params={"value": value, "count": sum(ch in "0123456789" for ch in number)},
        )
    if not orgnr.is_valid(number):
        raise ValidationError(
            _("%(value)s is not a valid organisation number: the check digit does not match."),
            code="organisation_number_check_digit",
            params={"value": value},
        )
