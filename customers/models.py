"""Customer and invoicing records.

Invariants:
- An issued invoice (one with `issued_on`) is an accounting record: its number, dates, amounts,
  billing snapshot and lines never change. Model validation refuses it with a clear message and
  database triggers refuse it even from raw SQL. Corrections are credit notes.
- Invoices, their payments and the contracts they refer to outlive the customer row: their foreign
  keys to the customer are `SET NULL` in the database, so deleting a customer at relationship end
  leaves the billing snapshot (what the Accounting Act requires) and nothing else.
- A contract an invoice refers to, and an invoice a credit note refers to, cannot be deleted before
  the referring invoice (a plain foreign key, NO ACTION): documentation goes with what it documents.
- Child rows that belong only to the customer are removed by `ON DELETE CASCADE` in the database,
  not by Django's collector: no signal receivers on these models (a receiver makes every purge
  fetch its rows; see DESIGN.md).
"""

from __future__ import annotations

import functools
import operator
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

import pgtrigger
from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Case, Exists, F, Max, OuterRef, Q, Subquery, When
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.money import STANDARD_VAT_RATE, InvoiceTotals, invoice_totals, line_amount
from customers.relationship import Relationship, RelationshipStatus, relationship_on
from customers.validators import normalize_organisation_number, validate_organisation_number
from database.triggers import Refuse

if TYPE_CHECKING:
    from django.db.models.fields.related_descriptors import RelatedManager


class CustomerQuerySet(models.QuerySet["Customer"]):
    def with_relationship(self, *, today: date | None = None) -> CustomerQuerySet:
        """Annotate `relationship_status` and `relationship_ended_on` (the SQL twin of
        `customers.relationship.relationship_on`). Uses the (customer_id, ended_on) index."""
        today = today or timezone.localdate()
        contracts = Contract.objects.filter(customer=OuterRef("pk"))
        open_contract = contracts.filter(Q(ended_on__isnull=True) | Q(ended_on__gte=today))
        latest_end = contracts.order_by().values("customer").annotate(latest=Max("ended_on")).values("latest")
        return self.annotate(
            relationship_status=Case(
                When(Exists(open_contract), then=models.Value(RelationshipStatus.ACTIVE.value)),
                When(Exists(contracts), then=models.Value(RelationshipStatus.ENDED.value)),
                default=models.Value(RelationshipStatus.NO_CONTRACT.value),
                output_field=models.CharField(),
            ),
        ).annotate(
            relationship_ended_on=Case(
                When(relationship_status=RelationshipStatus.ENDED.value, then=Subquery(latest_end)),
                default=None,
                output_field=models.DateField(),
            )
        )

    def search(self, term: str) -> CustomerQuerySet:
        """Customers whose name or e-mail, or a contact's e-mail, contains `term`; whose
        organisation number starts with its digits; or who have the invoice with that number.

        Each part is a query of its own on its own index (trigram indexes on UPPER(name), UPPER(email)
        and the contacts' UPPER(email), the organisation numbers' prefix index, the invoice number's
        unique index), and the customers are those ids: one OR across the joined tables would read
        every customer, contact and invoice, and need DISTINCT on top."""
        term = term.strip()
        if not term:
            return self
        digits = normalize_organisation_number(term)
        matches = Customer.objects.filter(Q(name__icontains=term) | Q(email__icontains=term)).values("pk")
        matches = matches.union(Contact.objects.filter(email__icontains=term).values("customer_id"))
        if digits.isdigit():
            matches = matches.union(
                Customer.objects.filter(organisation_number__startswith=digits).values("pk"),
                Invoice.objects.filter(number=int(digits)).values("customer_id"),
            )
        return self.filter(pk__in=matches)


class Customer(models.Model):
    class Kind(models.TextChoices):
        PERSON = "person", _("Person")
        ORGANISATION = "organisation", _("Organisation")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.ORGANISATION)
    name = models.CharField(_("name"), max_length=200)
    organisation_number = models.CharField(
        _("organisation number"),
        max_length=9,
        blank=True,
        validators=[validate_organisation_number],
        help_text=_("Nine digits, as in Brønnøysundregistrene. Required for organisations."),
    )
    email = models.EmailField(_("e-mail"))
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    street_address = models.CharField(_("street address"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, default="NO")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("portal user"),
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="customer",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = CustomerQuerySet.as_manager()

    if TYPE_CHECKING:
        contacts: RelatedManager[Contact]
        contracts: RelatedManager[Contract]
        invoices: RelatedManager[Invoice]
        correspondence: RelatedManager[Correspondence]

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name", "pk"]
        permissions = [
            # Who signs in as a customer: her e-mail address, a contact's portal access and address.
            # Whoever holds it can let anyone see everything the portal shows the customer, so it is
            # given only to staff who may see all of that (the Privacy officer group).
            (
                "grant_portal_access",
                _("Can give portal access and change the address a customer signs in with"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation_number"],
                condition=~Q(organisation_number=""),
                name="customer_unique_organisation_number",
                violation_error_message=_("Another customer has this organisation number."),
            ),
            models.CheckConstraint(
                condition=~Q(kind="organisation") | ~Q(organisation_number=""),
                name="customer_organisation_has_number",
                violation_error_message=_("An organisation needs its organisation number."),
            ),
        ]
        indexes = [
            models.Index(fields=["email"], name="customer_email_idx"),
            # The changelist's default order: its first page is read off this index, not sorted.
            models.Index(fields=["name", "id"], name="customer_name_idx"),
            # Search (`CustomerQuerySet.search`): icontains is UPPER(column) LIKE UPPER('%term%'),
            # which trigram indexes answer; organisation numbers by prefix (any collation).
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="customer_name_trgm_idx"),
            GinIndex(OpClass(Upper("email"), name="gin_trgm_ops"), name="customer_email_trgm_idx"),
            models.Index(
                OpClass("organisation_number", name="varchar_pattern_ops"), name="customer_orgnr_prefix_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.organisation_number = normalize_organisation_number(self.organisation_number)
        if self.kind == self.Kind.ORGANISATION and not self.organisation_number:
            raise ValidationError(
                {"organisation_number": _("An organisation needs its organisation number.")}
            )

    @property
    def postal_address(self) -> str:
        lines = [self.street_address, f"{self.postal_code} {self.city}".strip()]
        return "\n".join(line for line in lines if line)

    def relationship(self, *, today: date | None = None) -> Relationship:
        today = today or timezone.localdate()
        return relationship_on(self.contracts.values_list("ended_on", flat=True), today=today)


class Contact(models.Model):
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.DB_CASCADE, related_name="contacts"
    )
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    role = models.CharField(_("role"), max_length=100, blank=True, help_text=_("E.g. invoice recipient"))
    # Staff may let a contact of an organisation sign in to the portal and see the organisation's
    # data; the contact then gets a sign-in of its own (`user`), made the first time it asks for a code.
    portal_access = models.BooleanField(
        _("portal access"),
        default=False,
        help_text=_("May sign in with this e-mail address and see the customer's data and exports."),
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("portal user"),
        null=True,
        blank=True,
        on_delete=models.DB_SET_NULL,
        related_name="contact",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["name", "pk"]
        indexes = [
            models.Index(fields=["email"], name="contact_email_idx"),
            GinIndex(OpClass(Upper("email"), name="gin_trgm_ops"), name="contact_email_trgm_idx"),
        ]

    def __str__(self) -> str:
        return self.name


# A record that outlives its customer keeps the customer's id, so the proof of its deletion years
# later still names her (retention's DeletionLog). The database fills it when the customer goes
# (ON DELETE SET NULL, by any path: the purge, the admin, raw SQL).
def keeps_former_customer(name: str) -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name=name,
        operation=pgtrigger.Update,
        when=pgtrigger.Before,
        condition=pgtrigger.Q(old__customer__isnull=False, new__customer__isnull=True),
        func="NEW.former_customer_id := OLD.customer_id; RETURN NEW;",
    )


def former_customer_field() -> models.BigIntegerField[int | None, int | None]:
    return models.BigIntegerField(
        _("former customer id"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("The customer's id, kept after the customer record has been deleted."),
    )


class Contract(models.Model):
    """A service agreement. Kept with the customer's data, or for the accounting period when an
    invoice refers to it (it is then primary documentation)."""

    class Service(models.TextChoices):
        WORDPRESS_HOSTING = "wordpress_hosting", _("WordPress hosting")
        MANAGED_WORDPRESS = "managed_wordpress", _("Managed WordPress")
        WOOCOMMERCE = "woocommerce", _("WooCommerce hosting")
        DOMAIN = "domain", _("Domain registration")
        EMAIL = "email", _("E-mail hosting")
        SUPPORT = "support", _("Support agreement")

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        on_delete=models.DB_SET_NULL,
        related_name="contracts",
    )
    service = models.CharField(_("service"), max_length=32, choices=Service.choices)
    monthly_price = models.DecimalField(
        _("monthly price (NOK, excl. VAT)"),
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.00"))],
    )
    started_on = models.DateField(_("started on"))
    ended_on = models.DateField(_("ended on"), null=True, blank=True, help_text=_("Last day of service."))
    former_customer_id = former_customer_field()
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        ordering = ["-started_on", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_on__isnull=True) | Q(ended_on__gte=F("started_on")),
                name="contract_ends_after_start",
                violation_error_message=_("A contract cannot end before it starts."),
            )
        ]
        indexes = [models.Index(fields=["customer", "ended_on"], name="contract_customer_end_idx")]
        triggers = [keeps_former_customer("contract_keeps_former_customer")]

    def __str__(self) -> str:
        return f"{self.get_service_display()} ({self.started_on:%d.%m.%Y})"


class InvoiceSequence(models.Model):
    """The last invoice number used. One row, locked while an invoice is issued, so numbers are
    consecutive without gaps (a PostgreSQL sequence skips numbers when a transaction rolls back)."""

    last_number = models.PositiveBigIntegerField(default=10000)

    class Meta:
        verbose_name = _("invoice number sequence")

    def __str__(self) -> str:
        return str(self.last_number)


class InvoiceLockedError(ValidationError):
    """An issued invoice was about to change."""


# Fields of an invoice that make up the accounting record once it is issued.
INVOICE_RECORD_FIELDS = (
    "number",
    "kind",
    "credited_invoice",
    "issued_on",
    "due_on",
    "billing_name",
    "billing_organisation_number",
    "billing_address",
    "billing_email",
    "net_amount",
    "vat_amount",
    "total_amount",
)


class Invoice(models.Model):
    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")

    number = models.PositiveBigIntegerField(
        _("invoice number"), unique=True, null=True, blank=True, editable=False
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.INVOICE)
    # NO ACTION in the database: an invoice cannot go while a credit note still refers to it, nor a
    # contract while an invoice refers to it (the agreement is then primary documentation).
    credited_invoice = models.ForeignKey(
        "self",
        verbose_name=_("credits invoice"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="credit_notes",
    )
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, on_delete=models.DB_SET_NULL, related_name="invoices"
    )
    former_customer_id = former_customer_field()
    contract = models.ForeignKey(
        Contract,
        verbose_name=_("contract"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="invoices",
    )
    issued_on = models.DateField(_("issued on"), null=True, blank=True, editable=False)
    due_on = models.DateField(_("due on"), null=True, blank=True)
    # The billing snapshot: who was invoiced, as invoiced. Kept for the accounting period even
    # after the customer record is gone.
    billing_name = models.CharField(_("billed name"), max_length=200, blank=True, editable=False)
    billing_organisation_number = models.CharField(
        _("billed organisation number"), max_length=9, blank=True, editable=False
    )
    billing_address = models.TextField(_("billed address"), blank=True, editable=False)
    billing_email = models.EmailField(_("billed e-mail"), blank=True, editable=False)
    net_amount = models.DecimalField(_("net (NOK)"), max_digits=12, decimal_places=2, default=Decimal("0.00"))
    vat_amount = models.DecimalField(_("VAT (NOK)"), max_digits=12, decimal_places=2, default=Decimal("0.00"))
    total_amount = models.DecimalField(
        _("total (NOK)"), max_digits=12, decimal_places=2, default=Decimal("0.00")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    if TYPE_CHECKING:
        lines: RelatedManager[InvoiceLine]
        payments: RelatedManager[Payment]

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-issued_on", "-number", "-pk"]
        indexes = [models.Index(fields=["customer", "issued_on"], name="invoice_customer_issued_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(issued_on__isnull=True) | Q(number__isnull=False),
                name="invoice_issued_has_number",
            ),
        ]
        triggers = [
            keeps_former_customer("invoice_keeps_former_customer"),
            Refuse(
                name="issued_invoice_is_immutable",
                message="an issued invoice is an accounting record and cannot change; issue a credit note",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__issued_on__isnull=False)
                & functools.reduce(
                    operator.or_,
                    (
                        pgtrigger.Q(**{f"old__{name}__df": pgtrigger.F(f"new__{name}")})
                        for name in INVOICE_RECORD_FIELDS
                    ),
                ),
            ),
        ]

    def __str__(self) -> str:
        if self.number is None:
            return str(_("Draft invoice"))
        return f"{self.get_kind_display()} {self.number}"

    @property
    def is_issued(self) -> bool:
        return self.issued_on is not None

    def computed_totals(self) -> InvoiceTotals:
        return invoice_totals(self.lines.values_list("quantity", "unit_price", "vat_rate"))

    def clean(self) -> None:
        if self.pk is None:
            return
        record = [name + "_id" if name == "credited_invoice" else name for name in INVOICE_RECORD_FIELDS]
        stored = Invoice.objects.filter(pk=self.pk).values(*record).first()
        if stored is None or stored["issued_on"] is None:
            return
        if any(stored[attname] != getattr(self, attname) for attname in record):
            raise invoice_locked_error(stored["number"])


def invoice_locked_error(number: int | None) -> InvoiceLockedError:
    return InvoiceLockedError(
        _(
            "Invoice %(number)s is issued and is an accounting record; it cannot be changed. "
            "Issue a credit note to correct it."
        ),
        code="invoice_issued",
        params={"number": number},
    )


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(
        Invoice, verbose_name=_("invoice"), on_delete=models.DB_CASCADE, related_name="lines"
    )
    description = models.CharField(_("description"), max_length=200)
    quantity = models.DecimalField(_("quantity"), max_digits=10, decimal_places=2, default=Decimal("1.00"))
    unit_price = models.DecimalField(_("unit price (NOK, excl. VAT)"), max_digits=12, decimal_places=2)
    vat_rate = models.DecimalField(_("VAT rate"), max_digits=4, decimal_places=2, default=STANDARD_VAT_RATE)

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["pk"]
        triggers = [
            # Lines of an issued invoice are part of the accounting record. The parent row is
            # already gone when ON DELETE CASCADE removes the lines of a deleted invoice, so the
            # purge of an invoice past its window still works.
            pgtrigger.Trigger(
                name="issued_invoice_lines_are_immutable",
                operation=pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete,
                when=pgtrigger.Before,
                declare=[("target_invoice", "bigint")],
                func="""
                    IF TG_OP = 'DELETE' THEN target_invoice := OLD.invoice_id;
                    ELSE target_invoice := NEW.invoice_id; END IF;
                    IF EXISTS (SELECT 1 FROM customers_invoice
                               WHERE id = target_invoice AND issued_on IS NOT NULL)
                       OR (TG_OP = 'UPDATE' AND EXISTS (
                               SELECT 1 FROM customers_invoice
                               WHERE id = OLD.invoice_id AND issued_on IS NOT NULL)) THEN
                        RAISE EXCEPTION 'invoice % is issued; its lines cannot change', target_invoice
                            USING ERRCODE = 'integrity_constraint_violation';
                    END IF;
                    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
                    RETURN NEW;
                """,
            ),
        ]

    def __str__(self) -> str:
        return self.description

    def clean(self) -> None:
        issued_number = (
            Invoice.objects.filter(pk=self.invoice_id, issued_on__isnull=False)
            .values_list("number", flat=True)
            .first()
        )
        if issued_number is not None:
            raise invoice_locked_error(issued_number)

    @property
    def amount(self) -> Decimal:
        return line_amount(quantity=self.quantity, unit_price=self.unit_price)


class Payment(models.Model):
    invoice = models.ForeignKey(
        Invoice, verbose_name=_("invoice"), on_delete=models.DB_CASCADE, related_name="payments"
    )
    amount = models.DecimalField(_("amount (NOK)"), max_digits=12, decimal_places=2)
    paid_on = models.DateField(_("paid on"))
    reference = models.CharField(
        _("reference"), max_length=64, blank=True, help_text=_("KID or bank reference")
    )

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-paid_on", "pk"]

    def __str__(self) -> str:
        return f"{self.amount} NOK {self.paid_on:%d.%m.%Y}"


class Correspondence(models.Model):
    """A support conversation or e-mail thread with the customer. The messages are held here as
    a copy; the processor (Zendesk, Google Workspace) holds the original under `external_id`."""

    class Channel(models.TextChoices):
        ZENDESK = "zendesk", _("Zendesk")
        EMAIL = "email", _("E-mail")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.DB_CASCADE, related_name="correspondence"
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    external_id = models.CharField(_("external id"), max_length=100)
    # The address the conversation was with, which may be one she no longer has: the processors
    # find her mail and tickets by it as well as by her current addresses.
    email = models.EmailField(
        _("e-mail address"),
        blank=True,
        default="",
        db_default="",  # rows written by raw SQL (imports, the benchmarks' builders) leave it out
        help_text=_("The customer's address this conversation was with, if not her current one."),
    )
    subject = models.CharField(_("subject"), max_length=250)
    opened_at = models.DateTimeField(_("opened"))
    last_message_at = models.DateTimeField(_("last message"))
    messages = models.JSONField(
        _("messages"), default=list, blank=True, help_text=_("A list of {sent_at, sender, body}.")
    )

    class Meta:
        verbose_name = _("correspondence")
        verbose_name_plural = _("correspondence")
        ordering = ["-last_message_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"], name="correspondence_unique_external_id"
            )
        ]
        indexes = [models.Index(fields=["customer", "last_message_at"], name="correspondence_customer_idx")]

    def __str__(self) -> str:
        return self.subject
