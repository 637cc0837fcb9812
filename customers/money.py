"""Invoice arithmetic in NOK.

Every line amount is rounded to øre (two decimals, half up, as Norwegian invoices round); VAT is
computed per rate on the sum of the rounded line amounts and rounded once more, so the printed
lines, the VAT and the total always add up.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

ORE = Decimal("0.01")
STANDARD_VAT_RATE = Decimal("0.25")


def round_to_ore(amount: Decimal) -> Decimal:
    return amount.quantize(ORE, rounding=ROUND_HALF_UP)


def line_amount(*, quantity: Decimal, unit_price: Decimal) -> Decimal:
    return round_to_ore(quantity * unit_price)


@dataclass(frozen=True)
class InvoiceTotals:
    net: Decimal
    vat: Decimal
    total: Decimal


def invoice_totals(lines: Iterable[tuple[Decimal, Decimal, Decimal]]) -> InvoiceTotals:
    """Totals for lines given as (quantity, unit_price, vat_rate)."""
    net_by_rate: dict[Decimal, Decimal] = defaultdict(Decimal)
    for quantity, unit_price, vat_rate in lines:
        net_by_rate[vat_rate] += line_amount(quantity=quantity, unit_price=unit_price)
    net = sum(net_by_rate.values(), Decimal("0.00"))
    vat = sum((round_to_ore(amount * rate) for rate, amount in net_by_rate.items()), Decimal("0.00"))
    return InvoiceTotals(net=round_to_ore(net), vat=round_to_ore(vat), total=round_to_ore(net + vat))
