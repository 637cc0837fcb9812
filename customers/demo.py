"""A demo data set: about 60 customers in every relationship state the retention rules care about,
with contacts, contracts, six financial years of invoices, payments and correspondence, plus logins.

Invariants:
- Idempotent: demo customers are recognised by their e-mail domain (`DEMO_EMAIL_DOMAIN`). When any
  exists, customer data is left untouched; logins are only ever created, never changed. A
  transaction-scoped advisory lock makes two concurrent runs behave like two sequential ones.
- Deterministic for a given `today`: every value comes from a seeded Faker instance and a seeded
  `random.Random`, never from global random state or the clock (creation timestamps aside), so two
  fresh databases seeded on the same day hold equal data.
- Invoices and credit notes go through `customers.services` in issue-date order, so numbers, totals
  and billing snapshots are what production code makes and numbers grow with time as they would.
"""

from __future__ import annotations

import os
import random
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

import pglock
from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from faker import Faker
from stdnum import luhn

from customers import services
from customers.models import (
    Contact,
    Contract,
    Correspondence,
    Customer,
    CustomerQuerySet,
    Invoice,
    InvoiceLine,
    Payment,
)
from customers.money import round_to_ore
from customers.relationship import RelationshipStatus, relationship_on
from customers.validators import organisation_number_check_digit

DEMO_EMAIL_DOMAIN = "demo.wphosting.example"
DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed demo credential, not a secret
DEMO_SEED = 2026
# Faker has no `nb_NO` locale; `no_NO` is its Norwegian (bokmål) one.
FAKER_LOCALE = "no_NO"


def portal_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/"


def admin_url() -> str:
    return f"{portal_url()}admin/"


ADMIN_USERNAME = "admin"
CUSTOMER_USERNAME = "kunde"
# Any constant unique to this job; pg_advisory_xact_lock takes a bigint.
_ADVISORY_LOCK_KEY = 0x5EED_2026
# Bokføringsloven § 13 keeps an invoice to 31 December of the fifth year after its financial year.
ACCOUNTING_YEARS = 5
# The privacy policy's "3 months after the relationship ended", as the tests count it.
RECENT_END_DAYS = 92


class DemoGroup(StrEnum):
    ACTIVE = "active"
    RECENTLY_ENDED = "recently_ended"
    ENDED_INVOICES_HELD = "ended_invoices_held"
    ENDED_ALL_EXPIRED = "ended_all_expired"


GROUP_DESCRIPTIONS = {
    DemoGroup.ACTIVE: "active (open-ended contracts)",
    DemoGroup.RECENTLY_ENDED: "ended within the last 3 months",
    DemoGroup.ENDED_INVOICES_HELD: "ended 1-3 years ago, invoices still in the accounting period",
    DemoGroup.ENDED_ALL_EXPIRED: "ended 7-8 years ago, every invoice past the accounting period",
}
# (persons, organisations) per group: 60 customers.
GROUP_SIZES = {
    DemoGroup.ACTIVE: (12, 18),
    DemoGroup.RECENTLY_ENDED: (4, 6),
    DemoGroup.ENDED_INVOICES_HELD: (5, 7),
    DemoGroup.ENDED_ALL_EXPIRED: (3, 5),
}
STAFF_ROLES = {
    "Support": "customers, contacts, contracts and correspondence",
    "Billing": "invoices, credit notes and payments",
    "Privacy officer": "reads every record; retention and access requests",
}
# Monthly prices in NOK excl. VAT, and the text on invoice lines (Norwegian, as invoiced).
PRICES = {
    Contract.Service.WORDPRESS_HOSTING: ("149.00", "249.00", "349.00"),
    Contract.Service.MANAGED_WORDPRESS: ("690.00", "990.00", "1490.00"),
    Contract.Service.WOOCOMMERCE: ("1290.00", "1990.00"),
    Contract.Service.DOMAIN: ("12.50", "15.00"),
    Contract.Service.EMAIL: ("39.00", "69.00", "129.00"),
    Contract.Service.SUPPORT: ("500.00", "1500.00"),
}
LINE_TEXT = {
    Contract.Service.WORDPRESS_HOSTING: "WordPress-hosting",
    Contract.Service.MANAGED_WORDPRESS: "Administrert WordPress",
    Contract.Service.WOOCOMMERCE: "WooCommerce-hosting",
    Contract.Service.DOMAIN: "Domeneregistrering",
    Contract.Service.EMAIL: "E-posthosting",
    Contract.Service.SUPPORT: "Supportavtale",
}
HOSTING = (
    Contract.Service.WORDPRESS_HOSTING,
    Contract.Service.MANAGED_WORDPRESS,
    Contract.Service.WOOCOMMERCE,
)
TRADES = (
    "Bygg", "Regnskap", "Rørlegger", "Bakeri", "Eiendom", "Design", "Frisør", "Transport", "Advokatfirma",
    "Tannklinikk", "Elektro", "Gårdsbutikk", "Maleservice", "Reklame", "Fysioterapi", "Blomster",
)  # fmt: skip
# Real postal codes, because Faker's `no_NO` cities are surnames.
PLACES = (
    ("0150", "Oslo"), ("0468", "Oslo"), ("5003", "Bergen"), ("7010", "Trondheim"), ("4006", "Stavanger"),
    ("9008", "Tromsø"), ("3015", "Drammen"), ("4610", "Kristiansand"), ("1606", "Fredrikstad"),
    ("2317", "Hamar"), ("6002", "Ålesund"), ("8006", "Bodø"), ("2609", "Lillehammer"), ("3110", "Tønsberg"),
    ("5527", "Haugesund"), ("2821", "Gjøvik"), ("1530", "Moss"), ("3717", "Skien"),
)  # fmt: skip
ROLES = ("Daglig leder", "Faktura", "Teknisk kontakt", "Markedsansvarlig")
# Conversations as (subject, [(sender, body), ...]); "customer" and "support" as in the factories.
THREADS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Nettsiden laster tregt",
        (
            ("customer", "Hei! Nettsiden vår har vært veldig treg siden i går. Kan dere se på det?"),
            ("support", "Hei, takk for beskjed. En utvidelse brukte mye minne; vi har oppdatert den og tømt "
             "hurtigbufferen. Siden svarer normalt nå."),
            ("customer", "Nå går det fort igjen. Tusen takk!"),
        ),
    ),
    (
        "Oppdatering av WordPress feilet",
        (
            ("customer", "Etter den automatiske oppdateringen i natt får vi en hvit side på /wp-admin."),
            ("support", "Temaet deres var ikke kompatibelt med den nye versjonen. Vi har rullet tilbake og "
             "satt opp et testmiljø der dere kan prøve oppdateringen først."),
        ),
    ),
    (
        "Ny e-postkonto",
        (
            ("customer", "Vi har fått en ny ansatt. Kan dere opprette en e-postkonto til henne?"),
            ("support", "Kontoen er opprettet, og innloggingen er sendt til den nye medarbeideren."),
        ),
    ),
    (
        "Spørsmål om faktura",
        (
            ("customer", "Hei, vi har fått en faktura med en linje vi ikke kjenner igjen. Hva gjelder den?"),
            ("support", "Linjen gjelder konsulentbistand ved flyttingen av nettstedet. Vi sender gjerne en "
             "timeliste om dere ønsker det."),
            ("customer", "Det er greit, da forstår vi. Takk."),
        ),
    ),
    (
        "Flytte domene til dere",
        (
            ("customer", "Vi vil flytte domenet vårt hit fra en annen leverandør. Hva trenger dere?"),
            ("support", "Vi trenger autorisasjonskoden (EPP-koden) fra nåværende registrar. Flyttingen tar "
             "normalt ett til to døgn."),
        ),
    ),
    (
        "SSL-sertifikatet er utløpt",
        (
            ("customer", "Nettleseren sier at siden vår ikke er sikker!"),
            ("support", "Fornyelsen stoppet fordi DNS pekte feil. Vi har rettet det og utstedt et nytt "
             "sertifikat."),
        ),
    ),
    (
        "Gjenoppretting fra sikkerhetskopi",
        (
            ("customer", "Vi slettet en side ved en feil i går. Kan den hentes tilbake?"),
            ("support", "Siden er gjenopprettet fra sikkerhetskopien fra i går kveld."),
            ("customer", "Supert, takk for rask hjelp!"),
        ),
    ),
    (
        "Endret fakturaadresse",
        (("customer", "Vi har flyttet. Kan dere bruke den nye adressen på fakturaene fremover?"),),
    ),
)  # fmt: skip
CANCELLATION_THREAD = (
    "Oppsigelse av avtalen",
    (
        ("customer", "Vi har bestemt oss for å avslutte avtalen. Hva er oppsigelsestiden?"),
        ("support", "Avtalen løper ut inneværende periode. Vi sender en bekreftelse og en kopi av "
         "nettstedet før alt slettes."),
        ("customer", "Takk, det passer fint."),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class DemoLogin:
    email: str  # what they sign in with
    can: str
    created: bool  # False: the user existed already and was left as it was
    staff: bool = True


@dataclass
class DemoReport:
    created: bool
    model_counts: dict[str, int]
    group_counts: dict[DemoGroup, int]
    logins: list[DemoLogin]


def demo_customers() -> CustomerQuerySet:
    return Customer.objects.filter(email__endswith=f"@{DEMO_EMAIL_DOMAIN}")


@transaction.atomic
def demo_seed(*, today: date | None = None) -> DemoReport:
    """Create the demo customers and logins unless they exist; report what the demo set holds."""
    today = today or timezone.localdate()
    # Waits for a concurrent run (pg_advisory_xact_lock); released when this transaction ends.
    pglock.advisory(_ADVISORY_LOCK_KEY, xact=True).acquire()
    created = not demo_customers().exists()
    portal_customer = None
    if created:
        plan = _DemoPlanner(today=today).plan()
        _write(plan)
        portal_customer = plan.portal_customer
    logins = _ensure_logins(portal_customer=portal_customer)
    return DemoReport(
        created=created,
        model_counts=demo_model_counts(),
        group_counts=demo_group_counts(today=today),
        logins=logins,
    )


def demo_model_counts() -> dict[str, int]:
    customers = demo_customers()
    invoices = Invoice.objects.filter(customer__in=customers)
    return {
        "customers": customers.count(),
        "contacts": Contact.objects.filter(customer__in=customers).count(),
        "contracts": Contract.objects.filter(customer__in=customers).count(),
        "invoices": invoices.filter(kind=Invoice.Kind.INVOICE).count(),
        "credit notes": invoices.filter(kind=Invoice.Kind.CREDIT_NOTE).count(),
        "invoice lines": InvoiceLine.objects.filter(invoice__in=invoices).count(),
        "payments": Payment.objects.filter(invoice__in=invoices).count(),
        "correspondence": Correspondence.objects.filter(customer__in=customers).count(),
    }


def demo_group_counts(*, today: date) -> dict[DemoGroup, int]:
    """Demo customers per group, read back from the database. This only describes the demo set;
    the retention rules themselves belong to the `retention` app."""
    contract_ends: dict[int, list[date | None]] = {
        pk: [] for pk in demo_customers().values_list("pk", flat=True)
    }
    for customer_id, ended_on in Contract.objects.filter(customer__in=demo_customers()).values_list(
        "customer_id", "ended_on"
    ):
        if customer_id is not None:
            contract_ends[customer_id].append(ended_on)
    latest_invoice_year: dict[int, int] = {}
    for customer_id, issued_on in Invoice.objects.filter(customer__in=demo_customers()).values_list(
        "customer_id", "issued_on"
    ):
        if customer_id is not None and issued_on is not None:
            latest_invoice_year[customer_id] = max(issued_on.year, latest_invoice_year.get(customer_id, 0))
    counts: Counter[DemoGroup] = Counter()
    for customer_id, ends in contract_ends.items():
        relationship = relationship_on(ends, today=today)
        if relationship.status == RelationshipStatus.ACTIVE:
            counts[DemoGroup.ACTIVE] += 1
        elif relationship.ended_on is None:
            continue
        elif relationship.ended_on >= today - timedelta(days=RECENT_END_DAYS):
            counts[DemoGroup.RECENTLY_ENDED] += 1
        elif latest_invoice_year.get(customer_id, 0) + ACCOUNTING_YEARS >= today.year:
            counts[DemoGroup.ENDED_INVOICES_HELD] += 1
        else:
            counts[DemoGroup.ENDED_ALL_EXPIRED] += 1
    return {group: counts[group] for group in DemoGroup}


def demo_report_lines(*, report: DemoReport) -> list[str]:
    if report.created:
        lines = ["Created the demo data set."]
    else:
        lines = [
            f"The demo data set already exists (customers with e-mail @{DEMO_EMAIL_DOMAIN}); left as it is."
        ]
    lines.append("Records:")
    lines += [f"  {name:<16} {count:>5}" for name, count in report.model_counts.items()]
    lines.append("Customers by relationship:")
    lines += [f"  {report.group_counts[group]:>3}  {GROUP_DESCRIPTIONS[group]}" for group in DemoGroup]
    lines.append(f"Staff sign in at {admin_url()} with e-mail and password {DEMO_PASSWORD}, then set up an")
    lines.append("authenticator app (two-factor) on the first visit:")
    for login in report.logins:
        if login.staff:
            note = "" if login.created else " (existed already; the password is as it was left)"
            lines.append(f"  {login.email:<36} {login.can}{note}")
    lines.append(f"Customers sign in at {portal_url()}accounts/login/ with their e-mail and a one-time code")
    lines.append("(with the default console mail, the code is printed in this terminal):")
    for login in report.logins:
        if not login.staff:
            lines.append(f"  {login.email:<36} {login.can}")
    return lines


# Planning: plain Python objects (one read: the organisation numbers already taken), every random
# draw in a fixed order.


@dataclass
class _InvoicePlan:
    customer: Customer
    contract: Contract
    issue_on: date
    lines: list[tuple[str, Decimal, Decimal]]
    credit_on: date | None
    # (days after issue, share of the total); a payment after `today` has not happened yet.
    payments: list[tuple[int, Decimal]]
    invoice: Invoice | None = None


@dataclass
class _Plan:
    today: date
    customers: list[Customer] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    contracts: list[Contract] = field(default_factory=list)
    correspondence: list[Correspondence] = field(default_factory=list)
    invoices: list[_InvoicePlan] = field(default_factory=list)
    portal_customer: Customer | None = None


class _DemoPlanner:
    def __init__(self, *, today: date) -> None:
        self.today = today
        self.rng = random.Random(DEMO_SEED)  # noqa: S311 - demo data, not a secret
        # A Faker instance of its own, seeded here: `Faker.seed()` would reseed the class-wide
        # random state that factory_boy and other callers share.
        self.fake = Faker(FAKER_LOCALE)
        self.fake.seed_instance(DEMO_SEED)
        self.plan_ = _Plan(today=today)
        self.used_emails: set[str] = set()
        self.used_names: set[str] = set()
        self.used_organisation_numbers: set[str] = set(
            Customer.objects.exclude(organisation_number="").values_list("organisation_number", flat=True)
        )

    def plan(self) -> _Plan:
        for group, (persons, organisations) in GROUP_SIZES.items():
            kinds = [Customer.Kind.PERSON] * persons + [Customer.Kind.ORGANISATION] * organisations
            self.rng.shuffle(kinds)
            for kind in kinds:
                self._customer(group=group, kind=kind)
        self._number_correspondence()
        return self.plan_

    def _customer(self, *, group: DemoGroup, kind: Customer.Kind) -> None:
        postal_code, city = self.rng.choice(PLACES)
        if kind == Customer.Kind.PERSON:
            name = self._unique_name(lambda: f"{self.fake.first_name()} {self.fake.last_name()}")
            local_part = _ascii_slug(name).replace("-", ".")
            organisation_number = ""
        else:
            name = self._unique_name(lambda: f"{self.fake.last_name()} {self.rng.choice(TRADES)} AS")
            local_part = "post." + _ascii_slug(name.removesuffix(" AS"))
            organisation_number = self._organisation_number()
        customer = Customer(
            kind=kind,
            name=name,
            organisation_number=organisation_number,
            email=self._unique_email(local_part),
            phone=self.fake.phone_number(),
            street_address=f"{self.fake.street_name()} {self.rng.randint(1, 120)}",
            postal_code=postal_code,
            city=city,
        )
        self.plan_.customers.append(customer)
        if kind == Customer.Kind.ORGANISATION:
            self._contacts(customer=customer)
        contracts = self._contracts(customer=customer, group=group)
        for contract, billing_months in contracts:
            self._invoices(customer=customer, contract=contract, billing_months=billing_months, group=group)
        self._correspondence(
            customer=customer, contracts=[contract for contract, _ in contracts], group=group
        )
        if (
            self.plan_.portal_customer is None
            and group == DemoGroup.ACTIVE
            and kind == Customer.Kind.PERSON
            and len(contracts) > 1
        ):
            self.plan_.portal_customer = customer

    def _unique_name(self, make: Callable[[], str]) -> str:
        while (name := make()) in self.used_names:
            pass
        self.used_names.add(name)
        return name

    def _unique_email(self, local_part: str) -> str:
        email, suffix = f"{local_part}@{DEMO_EMAIL_DOMAIN}", 1
        while email in self.used_emails:
            suffix += 1
            email = f"{local_part}{suffix}@{DEMO_EMAIL_DOMAIN}"
        self.used_emails.add(email)
        return email

    def _organisation_number(self) -> str:
        # Not `tests.factories.valid_organisation_number`: application code must not import tests.
        while True:
            first_eight = str(self.rng.choice((8, 9))) + "".join(
                str(self.rng.randrange(10)) for _ in range(7)
            )
            check = organisation_number_check_digit(first_eight)
            number = f"{first_eight}{check}"
            if check is not None and number not in self.used_organisation_numbers:
                self.used_organisation_numbers.add(number)
                return number

    def _contacts(self, *, customer: Customer) -> None:
        domain = f"{_ascii_slug(customer.name.removesuffix(' AS'))}.{DEMO_EMAIL_DOMAIN}"
        for role in self.rng.sample(ROLES, k=self.rng.randint(1, 3)):
            first, last = self.fake.first_name(), self.fake.last_name()
            self.plan_.contacts.append(
                Contact(
                    customer=customer,
                    name=f"{first} {last}",
                    email=f"{_ascii_slug(first)}.{_ascii_slug(last)}@{domain}",
                    phone=self.fake.phone_number(),
                    role=role,
                )
            )

    def _contracts(self, *, customer: Customer, group: DemoGroup) -> list[tuple[Contract, int]]:
        """The customer's contracts with their billing period in months. In an ended group the
        main contract ends on the relationship's end date and no other contract ends later."""
        today, rng = self.today, self.rng
        is_person = customer.kind == Customer.Kind.PERSON
        ended_on: date | None
        if group == DemoGroup.ACTIVE:
            ended_on = None
            started_on = today - timedelta(days=rng.randint(30, 6 * 365))
        elif group == DemoGroup.RECENTLY_ENDED:
            ended_on = today - timedelta(days=rng.randint(5, 85))
            started_on = ended_on - timedelta(days=rng.randint(365, 6 * 365))
        elif group == DemoGroup.ENDED_INVOICES_HELD:
            ended_on = today - timedelta(days=rng.randint(400, 1000))
            started_on = ended_on - timedelta(days=rng.randint(365, 4 * 365))
        else:
            ended_on = today - timedelta(days=rng.randint(7 * 365 + 5, 8 * 365))
            started_on = ended_on - timedelta(days=rng.randint(365, 3 * 365))

        if is_person:
            main_service = rng.choice(
                (Contract.Service.WORDPRESS_HOSTING,) * 3 + (Contract.Service.MANAGED_WORDPRESS,)
            )
            main_billing = 12
        else:
            main_service = rng.choice(HOSTING)
            main_billing = rng.choice((6, 12, 12))
        contracts = [(self._contract(customer, main_service, started_on, ended_on), main_billing)]

        # An upgrade: the customer moved from plain hosting to the main service the day before.
        if (
            group == DemoGroup.ACTIVE
            and main_service != Contract.Service.WORDPRESS_HOSTING
            and rng.random() < 0.5
        ):
            earlier_start = started_on - timedelta(days=rng.randint(365, 3 * 365))
            earlier = self._contract(
                customer, Contract.Service.WORDPRESS_HOSTING, earlier_start, started_on - timedelta(days=1)
            )
            contracts.append((earlier, 12))

        extras = [(Contract.Service.DOMAIN, 12, 0.4 if is_person else 0.6)]
        if not is_person:
            extras += [(Contract.Service.EMAIL, 12, 0.35), (Contract.Service.SUPPORT, 12, 0.15)]
        latest_start = min(ended_on or today, today - timedelta(days=1))
        for service, billing_months, probability in extras:
            if rng.random() >= probability:
                continue
            extra_start = min(started_on + timedelta(days=rng.randint(0, 200)), latest_start)
            extra_end = ended_on
            if ended_on is not None and rng.random() < 0.3:
                extra_end = max(extra_start, ended_on - timedelta(days=rng.randint(0, 200)))
            contracts.append((self._contract(customer, service, extra_start, extra_end), billing_months))
        return contracts

    def _contract(
        self, customer: Customer, service: Contract.Service, started_on: date, ended_on: date | None
    ) -> Contract:
        contract = Contract(
            customer=customer,
            service=service,
            monthly_price=Decimal(self.rng.choice(PRICES[service])),
            started_on=started_on,
            ended_on=ended_on,
        )
        self.plan_.contracts.append(contract)
        return contract

    def _invoices(
        self, *, customer: Customer, contract: Contract, billing_months: int, group: DemoGroup
    ) -> None:
        """Prepaid periods from the contract's start; only those the database would still hold,
        except for the group whose point is that every invoice is past its period."""
        rng, today = self.rng, self.today
        if group == DemoGroup.ENDED_ALL_EXPIRED:
            assert contract.ended_on is not None
            window_start = contract.ended_on - timedelta(days=2 * 365)
        else:
            window_start = date(today.year - ACCOUNTING_YEARS, 1, 1)
        last_day = min(contract.ended_on or today, today)
        service = Contract.Service(contract.service)
        period = 0
        while (issue_on := _add_months(contract.started_on, period * billing_months)) <= last_day:
            months = billing_months
            if contract.ended_on is not None:
                months = sum(_add_months(issue_on, m) <= contract.ended_on for m in range(billing_months))
            period_end = _add_months(issue_on, months) - timedelta(days=1)
            lines = [
                (
                    f"{LINE_TEXT[service]} {issue_on:%d.%m.%Y}–{period_end:%d.%m.%Y}",
                    Decimal(months),
                    contract.monthly_price,
                )
            ]
            if service in HOSTING:
                if period == 0 and rng.random() < 0.4:
                    lines.append(("Etablering og flytting av nettsted", Decimal(1), Decimal("1490.00")))
                if rng.random() < 0.08:
                    hours = Decimal(rng.choice(("0.50", "1.00", "1.50", "2.25")))
                    lines.append(("Konsulentbistand (timer)", hours, Decimal("1150.00")))
            credit_days = rng.randint(2, 20)
            credit_on = issue_on + timedelta(days=credit_days) if rng.random() < 0.04 else None
            if credit_on is not None and credit_on > today:
                credit_on = None
            if issue_on >= window_start:
                self.plan_.invoices.append(
                    _InvoicePlan(
                        customer=customer,
                        contract=contract,
                        issue_on=issue_on,
                        lines=lines,
                        credit_on=credit_on,
                        payments=[] if credit_on else self._payments(),
                    )
                )
            period += 1

    def _payments(self) -> list[tuple[int, Decimal]]:
        rng, draw = self.rng, self.rng.random()
        if draw < 0.82:
            return [(rng.randint(2, 14), Decimal(1))]
        if draw < 0.92:
            return [(rng.randint(20, 60), Decimal(1))]
        if draw < 0.96:
            return [(rng.randint(5, 14), Decimal("0.5")), (rng.randint(30, 60), Decimal("0.5"))]
        return []

    def _correspondence(self, *, customer: Customer, contracts: list[Contract], group: DemoGroup) -> None:
        rng = self.rng
        first_start = min(contract.started_on for contract in contracts)
        if group == DemoGroup.ACTIVE:
            span = (max(first_start, self.today - timedelta(days=3 * 365)), self.today - timedelta(days=4))
            threads = [(rng.choice(THREADS), self._day_between(*span)) for _ in range(rng.randint(0, 3))]
        else:
            ended_on = max(contract.ended_on or self.today for contract in contracts)
            span = (max(first_start, ended_on - timedelta(days=365)), ended_on - timedelta(days=60))
            threads = [(rng.choice(THREADS), self._day_between(*span)) for _ in range(rng.randint(0, 2))]
            threads.append((CANCELLATION_THREAD, ended_on - timedelta(days=rng.randint(20, 59))))
        for (subject, messages), day in threads:
            sent_at = timezone.make_aware(datetime.combine(day, time(rng.randint(8, 19), rng.randint(0, 59))))
            log = []
            for sender, body in messages:
                log.append({"sent_at": sent_at.isoformat(), "sender": sender, "body": body})
                sent_at += timedelta(minutes=rng.randint(20, 26 * 60))
            self.plan_.correspondence.append(
                Correspondence(
                    customer=customer,
                    channel=Correspondence.Channel.ZENDESK
                    if rng.random() < 0.7
                    else Correspondence.Channel.EMAIL,
                    subject=subject,
                    opened_at=datetime.fromisoformat(log[0]["sent_at"]),
                    last_message_at=datetime.fromisoformat(log[-1]["sent_at"]),
                    messages=log,
                )
            )

    def _day_between(self, first: date, last: date) -> date:
        return first + timedelta(days=self.rng.randint(0, max(0, (last - first).days)))

    def _number_correspondence(self) -> None:
        # Zendesk numbers tickets in the order they were opened; Gmail thread ids are 64-bit hex.
        ticket = 21400
        for thread in sorted(self.plan_.correspondence, key=lambda thread: thread.opened_at):
            if thread.channel == Correspondence.Channel.ZENDESK:
                ticket += self.rng.randint(3, 40)
                thread.external_id = str(ticket)
            else:
                thread.external_id = f"{self.rng.getrandbits(64):016x}"


# Writing.


def _write(plan: _Plan) -> None:
    Customer.objects.bulk_create(plan.customers)
    Contact.objects.bulk_create(plan.contacts)
    Contract.objects.bulk_create(plan.contracts)
    Correspondence.objects.bulk_create(plan.correspondence)

    # Issue in date order so invoice numbers grow with time; a credit note follows its invoice.
    events = [(item.issue_on, order, 0) for order, item in enumerate(plan.invoices)]
    events += [(item.credit_on, order, 1) for order, item in enumerate(plan.invoices) if item.credit_on]
    for day, order, is_credit in sorted(events):
        item = plan.invoices[order]
        if is_credit:
            assert item.invoice is not None
            services.credit_note_create(invoice=item.invoice, issued_on=day)
        else:
            item.invoice = services.invoice_create(
                customer=item.customer, lines=item.lines, contract_id=item.contract.pk, issue_on=day
            )

    for item in plan.invoices:
        assert item.invoice is not None and item.invoice.number is not None
        paid = Decimal("0.00")
        for index, (days, share) in enumerate(item.payments):
            paid_on = item.issue_on + timedelta(days=days)
            if paid_on > plan.today:
                break
            last = index == len(item.payments) - 1
            amount = (
                item.invoice.total_amount - paid if last else round_to_ore(item.invoice.total_amount * share)
            )
            services.payment_register(
                invoice=item.invoice, amount=amount, paid_on=paid_on, reference=_kid(item.invoice.number)
            )
            paid += amount


def _ensure_logins(*, portal_customer: Customer | None) -> list[DemoLogin]:
    logins = []
    _admin, created = _ensure_user(
        username=ADMIN_USERNAME,
        email=f"{ADMIN_USERNAME}@{DEMO_EMAIL_DOMAIN}",
        name="Demo Admin",
        superuser=True,
    )
    logins.append(DemoLogin(_admin.email, "superuser: everything in admin", created))
    # One login per staff group that exists, so groups added by later migrations get one too.
    for group in Group.objects.order_by("name"):
        username = slugify(group.name)
        user, created = _ensure_user(
            username=username, email=f"{username}@{DEMO_EMAIL_DOMAIN}", name=f"Demo {group.name}", staff=True
        )
        if created:
            user.groups.add(group)
        can = f"staff in group {group.name!r}: {STAFF_ROLES.get(group.name, 'what the group grants')}"
        logins.append(DemoLogin(user.email, can, created))
    customer_created = False
    if portal_customer is not None:
        user, customer_created = _ensure_user(
            username=CUSTOMER_USERNAME, email=portal_customer.email, name=portal_customer.name
        )
        if not (user.is_staff or user.is_superuser) and user.has_usable_password():
            # Seeded before customers lost their passwords: the printed demo password opened the
            # staff sign-in page for her.
            user.set_unusable_password()
            user.save(update_fields=["password"])
        # A user of that name already linked to someone else keeps its customer.
        if not Customer.objects.filter(user=user).exists():
            portal_customer.user = user
            portal_customer.save(update_fields=["user"])
    customer = demo_customers().filter(user__username=CUSTOMER_USERNAME).first()
    if customer is not None:
        can = f"customer pages of {customer.name}: see own data and ask for a copy"
        logins.append(DemoLogin(customer.email, can, customer_created, staff=False))
    return logins


def _ensure_user(
    *, username: str, email: str, name: str, staff: bool = False, superuser: bool = False
) -> tuple[User, bool]:
    """The user with this name; created when missing (staff with the demo password, a customer with
    none), never changed."""
    user_model = get_user_model()
    existing = user_model.objects.filter(username=username).first()
    if existing is not None:
        return existing, False
    first_name, _, last_name = name.rpartition(" ")
    user = user_model(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        is_staff=staff or superuser,
        is_superuser=superuser,
    )
    if staff or superuser:
        # Fail loudly if the demo password stops meeting the validators rather than seed a weak one.
        password_validation.validate_password(DEMO_PASSWORD, user)
        user.set_password(DEMO_PASSWORD)
    else:
        user.set_unusable_password()  # customers sign in with a code; they never have a password
    user.save()
    return user, True


def _add_months(day: date, months: int) -> date:
    # Billing days past the 28th fall back to the month's last day, as a monthly subscription does.
    # (retention.windows.add_months does the same, but customers imports no other app.)
    return day + relativedelta(months=months)


def _kid(number: int) -> str:
    """A KID (customer identification number) for the invoice: its number with a mod-10 (Luhn)
    check digit, the form Norwegian banks accept for OCR payments."""
    return f"{number}{luhn.calc_check_digit(str(number))}"


def _ascii_slug(text: str) -> str:
    # slugify drops æ, ø and å; Norwegians write them ae, o, a in addresses.
    text = text.lower().replace("æ", "ae").replace("ø", "o").replace("å", "a")
    return slugify(unicodedata.normalize("NFKD", text))
