"""factory_boy factories for the portal's records."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from customers.models import Contact, Contract, Correspondence, Customer, Invoice, InvoiceLine
from customers.validators import organisation_number_check_digit


def valid_organisation_number(rng: random.Random | None = None) -> str:
    rng = rng or random.Random()
    while True:
        first_eight = str(rng.choice((8, 9))) + "".join(str(rng.randrange(10)) for _ in range(7))
        check = organisation_number_check_digit(first_eight)
        if check is not None:
            return f"{first_eight}{check}"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.no")


class CustomerFactory(factory.django.DjangoModelFactory[Customer]):
    class Meta:
        model = Customer

    kind = Customer.Kind.ORGANISATION
    name = factory.Sequence(lambda n: f"Kunde {n} AS")
    organisation_number = factory.LazyFunction(valid_organisation_number)
    email = factory.Sequence(lambda n: f"post{n}@kunde.example.no")
    phone = factory.Sequence(lambda n: f"+47 9{n % 10000000:07d}")
    street_address = factory.Sequence(lambda n: f"Storgata {n}")
    postal_code = "0155"
    city = "Oslo"


class PersonCustomerFactory(CustomerFactory):
    kind = Customer.Kind.PERSON
    name = factory.Sequence(lambda n: f"Person Nummer{n}")
    organisation_number = factory.LazyFunction(str)


class ContactFactory(factory.django.DjangoModelFactory[Contact]):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"Kontakt {n}")
    email = factory.Sequence(lambda n: f"kontakt{n}@kunde.example.no")
    role = "Faktura"


class ContractFactory(factory.django.DjangoModelFactory[Contract]):
    class Meta:
        model = Contract

    customer = factory.SubFactory(CustomerFactory)
    service = Contract.Service.WORDPRESS_HOSTING
    monthly_price = Decimal("249.00")
    started_on = date(2024, 1, 1)
    ended_on = None


class InvoiceFactory(factory.django.DjangoModelFactory[Invoice]):
    """A draft invoice with one line; `services.invoice_issue` issues it."""

    class Meta:
        model = Invoice
        skip_postgeneration_save = True

    customer = factory.SubFactory(CustomerFactory)
    line = factory.RelatedFactory("tests.factories.InvoiceLineFactory", factory_related_name="invoice")


class InvoiceLineFactory(factory.django.DjangoModelFactory[InvoiceLine]):
    class Meta:
        model = InvoiceLine

    invoice = factory.SubFactory(InvoiceFactory, line=None)
    description = "WordPress hosting, 1 month"
    quantity = Decimal("1.00")
    unit_price = Decimal("249.00")


class CorrespondenceFactory(factory.django.DjangoModelFactory[Correspondence]):
    class Meta:
        model = Correspondence

    customer = factory.SubFactory(CustomerFactory)
    channel = Correspondence.Channel.ZENDESK
    external_id = factory.Sequence(lambda n: str(100000 + n))
    subject = factory.Sequence(lambda n: f"Spørsmål om nettsiden {n}")
    opened_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=3))
    last_message_at = factory.LazyFunction(timezone.now)
    messages = factory.LazyAttribute(
        lambda c: [{"sent_at": c.opened_at.isoformat(), "sender": "customer", "body": "Hei, siden er treg."}]
    )
