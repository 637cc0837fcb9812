from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers.money import STANDARD_VAT_RATE, invoice_totals, line_amount, round_to_ore

D = Decimal


def test_vat_is_25_percent_of_the_net_amount() -> None:
    totals = invoice_totals([(D("1"), D("249.00"), STANDARD_VAT_RATE)])
    assert (totals.net, totals.vat, totals.total) == (D("249.00"), D("62.25"), D("311.25"))


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(D("0.005"), D("0.01")), (D("0.004"), D("0.00")), (D("-0.005"), D("-0.01")), (D("10.125"), D("10.13"))],
)
def test_amounts_round_half_up_to_ore(amount: Decimal, expected: Decimal) -> None:
    assert round_to_ore(amount) == expected


def test_each_line_is_rounded_before_it_is_summed() -> None:
    # 3 x 33.333 = 99.999 -> 100.00 per line, as printed on the invoice.
    assert line_amount(quantity=D("3"), unit_price=D("33.333")) == D("100.00")
    totals = invoice_totals(
        [(D("3"), D("33.333"), STANDARD_VAT_RATE), (D("1"), D("0.01"), STANDARD_VAT_RATE)]
    )
    assert totals.net == D("100.01")
    assert totals.vat == D("25.00")  # 25.0025 rounds down
    assert totals.total == D("125.01")


def test_vat_is_computed_per_rate() -> None:
    totals = invoice_totals([(D("1"), D("100.00"), D("0.25")), (D("1"), D("100.00"), D("0.15"))])
    assert totals.vat == D("40.00")


def test_a_credit_note_mirrors_its_invoice() -> None:
    lines = [(D("2"), D("149.50"), STANDARD_VAT_RATE)]
    credit = [(q, -p, r) for q, p, r in lines]
    assert invoice_totals(credit).total == -invoice_totals(lines).total


amounts = st.decimals(min_value=D("-100000"), max_value=D("100000"), places=2)
quantities = st.decimals(min_value=D("0"), max_value=D("1000"), places=2)


@given(st.lists(st.tuples(quantities, amounts), min_size=1, max_size=20))
def test_printed_lines_vat_and_total_always_add_up(lines: list[tuple[Decimal, Decimal]]) -> None:
    totals = invoice_totals([(q, p, STANDARD_VAT_RATE) for q, p in lines])
    assert totals.net == sum((line_amount(quantity=q, unit_price=p) for q, p in lines), D("0"))
    assert totals.total == totals.net + totals.vat
    assert abs(totals.vat - totals.net * STANDARD_VAT_RATE) <= D("0.005")
    assert totals.vat.as_tuple().exponent == -2
