"""The data map: every category of personal data the portal is responsible for, in one place.

Everything else reads it: the purge asks each category for what is past its window, the export
builder asks each table for one customer's rows, the privacy page and the customer's page render
purposes, processors and periods from it, and a system check (`retention.checks`) fails when a
model that holds personal data (has a path to Customer) is in no category.

A category names its tables (model, the fields holding personal data, the path from the model to
the customer), its purpose and legal basis, its processor, its retention rule, and the purge that
enforces the rule. Adding a table that holds personal data means adding it here; the check makes
sure nobody forgets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.db import models
from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from customers.models import INVOICE_RECORD_FIELDS
from retention.windows import RetentionPeriods


@dataclass(frozen=True)
class Processor:
    key: str
    name: str
    role: Promise
    privacy_url: str
    location: Promise


PROCESSORS: dict[str, Processor] = {
    processor.key: processor
    for processor in (
        Processor(
            "wp_hosting",
            "WP Hosting AS",
            _("Controller: our own systems (this portal)"),
            "",
            _("Norway / EU"),
        ),
        Processor(
            "aws",
            "Amazon Web Services",
            _("Processor: servers, server logs and storage of exports"),
            "https://aws.amazon.com/privacy/",
            _("EU (Stockholm, eu-north-1)"),
        ),
        Processor(
            "google",
            "Google",
            _("Processor: e-mail (Google Workspace) and web analytics (Google Analytics)"),
            "https://policies.google.com/privacy",
            _("EU/EEA and USA (EU–US Data Privacy Framework)"),
        ),
        Processor(
            "zendesk",
            "Zendesk",
            _("Processor: customer support e-mail and tickets"),
            "https://www.zendesk.com/company/agreements-and-terms/privacy-notice/",
            _("EU (data centre in the EEA)"),
        ),
    )
}


@dataclass(frozen=True)
class Table:
    """One model's part in a category."""

    model: str  # "app_label.ModelName"
    fields: tuple[str, ...]  # the fields exported and described; personal data among them
    customer_path: str  # ORM lookup from this model to the customer's id, e.g. "customer"
    description: Promise | str = ""
    # Rows that reach the customer by something other than a lookup (the admin's history names
    # its object by content type and id): a function from the customer's id to her rows.
    rows: Callable[[int], models.QuerySet[models.Model]] | None = field(default=None, compare=False)

    @property
    def model_class(self) -> type[models.Model]:
        return apps.get_model(self.model)

    def rows_for_customer(self, customer_id: int) -> models.QuerySet[models.Model]:
        if self.rows is not None:
            return self.rows(customer_id).order_by("pk")
        manager = self.model_class._default_manager
        return manager.filter(**{self.customer_path: customer_id}).order_by("pk")


@dataclass(frozen=True)
class Category:
    key: str
    name: Promise
    description: Promise
    purpose: Promise
    legal_basis: Promise
    processors: tuple[str, ...]
    storage: Promise
    retention: str  # the promise in words, with the configured period, in the active language
    rule: str  # a stable rule name written to the deletion log
    enforced_by: Promise
    tables: tuple[Table, ...] = field(default=())

    def processor_list(self) -> list[Processor]:
        return [PROCESSORS[key] for key in self.processors]


def _categories() -> tuple[Category, ...]:
    periods = RetentionPeriods.from_settings()
    months = periods.customer_data_months
    return (
        Category(
            key="customer_account",
            name=_("Customer account"),
            description=_(
                "Who you are and how we reach you: name, organisation number, contacts and addresses."
            ),
            purpose=_("To deliver the services you have ordered, to bill them and to answer you."),
            legal_basis=_("Contract (GDPR art. 6(1)(b))"),
            processors=("wp_hosting",),
            storage=_("The portal's database (PostgreSQL)"),
            retention=_("Until %(months)s months after the customer relationship ended.")
            % {"months": months},
            rule=f"relationship_end+{months}m",
            enforced_by=_("Nightly purge"),
            tables=(
                Table(
                    "customers.Customer",
                    (
                        "kind",
                        "name",
                        "organisation_number",
                        "email",
                        "phone",
                        "street_address",
                        "postal_code",
                        "city",
                        "country",
                        "created_at",
                    ),
                    "pk",
                    _("The customer record"),
                ),
                Table("customers.Contact", ("name", "email", "phone", "role", "created_at"), "customer"),
                Table("auth.User", ("username", "email", "date_joined", "last_login"), "customer"),
                Table("account.EmailAddress", ("email", "verified", "primary"), "user__customer"),
                # Contacts staff let into the portal sign in with a user of their own (Contact.user).
                Table(
                    "auth.User",
                    ("username", "email", "date_joined", "last_login"),
                    "contact__customer",
                    _("Sign-ins of contacts allowed into the portal"),
                ),
                Table(
                    "account.EmailAddress",
                    ("email", "verified", "primary"),
                    "user__contact__customer",
                    _("E-mail addresses of contacts allowed into the portal"),
                ),
                # A second factor set up for signing in: its kind and when it was used, never its secret.
                Table(
                    "mfa.Authenticator",
                    ("type", "created_at", "last_used_at"),
                    "user__customer",
                    _("Second factors set up for signing in (authenticator app, recovery codes)"),
                ),
                Table(
                    "mfa.Authenticator",
                    ("type", "created_at", "last_used_at"),
                    "user__contact__customer",
                    _("Second factors your contacts set up for signing in"),
                ),
                Table(
                    "retention.LegalHold",
                    ("reason", "placed_at", "ends_on", "released_at"),
                    "customer",
                    _("Holds that stop deletion while a legal claim or obligation requires it"),
                ),
                # What staff changed in the admin names the record it changed (its name, for a
                # customer or contact); it goes with the record (retention.purges.base).
                Table(
                    "admin.LogEntry",
                    ("action_time", "action_flag", "object_repr", "change_message"),
                    "",
                    _("Changes staff made to your records in the administration"),
                    rows=admin_history_rows,
                ),
            ),
        ),
        Category(
            key="contracts",
            name=_("Contracts"),
            description=_("Your service agreements: which services, from when, to when and at what price."),
            purpose=_("To deliver and bill the agreed services; as accounting documentation when invoiced."),
            legal_basis=_(
                "Contract (GDPR art. 6(1)(b)); legal obligation (bokføringsloven § 13) when invoiced"
            ),
            processors=("wp_hosting",),
            storage=_("The portal's database (PostgreSQL)"),
            retention=_(
                "Until %(months)s months after the customer relationship ended; an agreement an invoice "
                "refers to is kept as long as that invoice."
            )
            % {"months": months},
            rule=f"relationship_end+{months}m|invoice_reference",
            enforced_by=_("Nightly purge; the database refuses deleting an agreement an invoice refers to"),
            tables=(
                Table(
                    "customers.Contract",
                    ("service", "monthly_price", "started_on", "ended_on", "created_at"),
                    "customer",
                ),
            ),
        ),
        Category(
            key="invoices",
            name=_("Invoices and payments"),
            description=_(
                "Invoices, credit notes and payments, with the name, organisation number and address "
                "as invoiced."
            ),
            purpose=_("Accounting: the Norwegian Accounting Act requires us to keep primary documentation."),
            legal_basis=_("Legal obligation (GDPR art. 6(1)(c)), bokføringsloven § 13"),
            processors=("wp_hosting",),
            storage=_("The portal's database (PostgreSQL)"),
            retention=_(
                "Until %(years)s years after the end of the financial year the invoice or payment belongs to."
            )
            % {"years": periods.accounting_years},
            rule=f"fiscal_year_end+{periods.accounting_years}y",
            enforced_by=_(
                "Nightly purge; the database refuses deleting an invoice or payment inside the period"
            ),
            tables=(
                Table("customers.Invoice", INVOICE_RECORD_FIELDS, "customer"),
                Table(
                    "customers.InvoiceLine",
                    ("invoice", "description", "quantity", "unit_price", "vat_rate"),
                    "invoice__customer",
                ),
                Table(
                    "customers.Payment", ("invoice", "amount", "paid_on", "reference"), "invoice__customer"
                ),
            ),
        ),
        Category(
            key="correspondence",
            name=_("Correspondence"),
            description=_("E-mails and support tickets between you and us."),
            purpose=_("To answer your questions and keep track of what was agreed."),
            legal_basis=_("Contract (GDPR art. 6(1)(b)); legitimate interest in following up (art. 6(1)(f))"),
            processors=("zendesk", "google"),
            storage=_("Zendesk and Google Workspace, with a copy in the portal's database"),
            retention=_("Until %(months)s months after the customer relationship ended.")
            % {"months": months},
            rule=f"relationship_end+{months}m",
            enforced_by=_("Nightly purge, here and at the processor"),
            tables=(
                Table(
                    "customers.Correspondence",
                    (
                        "channel",
                        "external_id",
                        "email",
                        "subject",
                        "opened_at",
                        "last_message_at",
                        "messages",
                    ),
                    "customer",
                ),
            ),
        ),
        Category(
            key="server_logs",
            name=_("Server logs"),
            description=_("Web server logs: IP addresses, the pages asked for, time and browser."),
            purpose=_("Security and troubleshooting of the hosting platform."),
            legal_basis=_("Legitimate interest in secure and stable services (GDPR art. 6(1)(f))"),
            processors=("aws",),
            storage=_("Amazon S3 (encrypted), eu-north-1"),
            retention=_("%(months)s months from when they were written.")
            % {"months": periods.server_log_months},
            rule=f"created+{periods.server_log_months}m",
            enforced_by=_("S3 lifecycle rule, with a nightly sweep as backstop"),
        ),
        Category(
            key="web_analytics",
            name=_("Web analytics"),
            description=_(
                "Google Analytics cookies and the statistics they produce about visits to our web pages."
            ),
            purpose=_("To understand how our web pages are used, so we can improve them."),
            legal_basis=_("Consent (GDPR art. 6(1)(a)), given in the cookie banner"),
            processors=("google",),
            storage=_("Google Analytics"),
            retention=_("%(months)s months, as set in Google Analytics.")
            % {"months": periods.analytics_months},
            rule="analytics_property_setting",
            enforced_by=_(
                "Google Analytics' data retention setting, checked daily against this policy; "
                "deletion at Google with your other data when you have given us your analytics id"
            ),
            tables=(
                Table(
                    "retention.AnalyticsIdentifier",
                    ("client_id", "created_at"),
                    "customer",
                    _("The Google Analytics id you gave us, so Google deletes its data about you with ours"),
                ),
            ),
        ),
        Category(
            key="access_request_exports",
            name=_("Copies of your data"),
            description=_("Your requests for a copy of your data, and the copies (ZIP files) we prepare."),
            purpose=_("To give you insight into what we hold about you (GDPR art. 15)."),
            legal_basis=_("Legal obligation (GDPR art. 6(1)(c), art. 12 and 15)"),
            processors=("wp_hosting", "aws"),
            storage=_("Encrypted file storage (Amazon S3), and the request in the portal's database"),
            retention=_(
                "The file %(days)s days after it is ready; the request itself with your other customer data."
            )
            % {"days": periods.export_days},
            rule=f"ready+{periods.export_days}d",
            enforced_by=_("Hourly expiry"),
            tables=(
                Table(
                    "access_requests.AccessRequest",
                    (
                        "status",
                        "channel",
                        "identity_verification",
                        "received_at",
                        "due_on",
                        "extended_at",
                        "extension_reason",
                        "rejection_reason",
                        "ready_at",
                        "expires_at",
                        "downloaded_at",
                        "download_count",
                    ),
                    "customer",
                ),
            ),
        ),
        Category(
            key="erasure_requests",
            name=_("Requests to delete your data"),
            description=_(
                "Your requests to have your data deleted now, and their receipts: what was deleted, "
                "what was kept, why and until when."
            ),
            purpose=_(
                "To carry out your request (GDPR art. 17), to be able to show that we did (art. 5(2)), "
                "and to delete your data again should we ever restore a backup from before it."
            ),
            legal_basis=_("Legal obligation (GDPR art. 6(1)(c), art. 5(2), 12 and 17)"),
            processors=("wp_hosting",),
            storage=_("The portal's database, and the fingerprint also in our file storage"),
            retention=_(
                "%(years)s years after the request was answered. After an erasure only the receipt "
                "and a keyed fingerprint of your identifiers remain: no name, address or e-mail."
            )
            % {"years": periods.accounting_years},
            rule=f"answered+{periods.accounting_years}y",
            enforced_by=_("Nightly purge"),
            tables=(
                Table(
                    "access_requests.ErasureRequest",
                    (
                        "status",
                        "asked_at",
                        "received_at",
                        "due_on",
                        "extended_at",
                        "extension_reason",
                        "rejection_reason",
                        "finished_at",
                        "receipt",
                    ),
                    "customer",
                ),
            ),
        ),
        Category(
            key="sessions_and_audit",
            name=_("Sign-ins and audit trail"),
            description=_(
                "Sign-in sessions, and the record of which employee looked at or changed your data."
            ),
            purpose=_("Security: to keep you signed in and to document that only employees reach your data."),
            legal_basis=_("Legitimate interest in secure processing (GDPR art. 6(1)(f), art. 32)"),
            processors=("wp_hosting",),
            storage=_("The portal's database (PostgreSQL)"),
            retention=_(
                "Sessions until they expire; the audit trail %(months)s months, holding only ids, "
                "never names."
            )
            % {"months": periods.audit_months},
            rule=f"session_expiry|created+{periods.audit_months}m",
            enforced_by=_("Nightly purge"),
            tables=(
                Table(
                    "audit.AuditEvent",
                    ("kind", "actor", "object_type", "object_id", "changed_fields", "created_at"),
                    "customer_id",
                    _("Staff access to your data"),
                ),
                Table("audit.UserSession", ("created_at",), "user__customer", _("Your sign-ins")),
                Table(
                    "audit.UserSession",
                    ("created_at",),
                    "user__contact__customer",
                    _("Sign-ins of your contacts allowed into the portal"),
                ),
            ),
        ),
    )


def admin_history_rows(customer_id: int) -> models.QuerySet[models.Model]:
    """The admin's history entries about any row of the customer's in the other tables."""
    from retention.purges.base import admin_history_of

    about = Q(pk__in=[])
    for _category, table in tables():
        if table.rows is None:
            about |= Q(pk__in=admin_history_of(table.rows_for_customer(customer_id)).values("pk"))
    return apps.get_model("admin.LogEntry")._default_manager.filter(about)


def categories() -> tuple[Category, ...]:
    return _categories()


def category(key: str) -> Category:
    for candidate in categories():
        if candidate.key == key:
            return candidate
    raise KeyError(f"no data category {key!r}; the data map has {', '.join(c.key for c in categories())}")


def tables() -> Iterator[tuple[Category, Table]]:
    for candidate in categories():
        for table in candidate.tables:
            yield candidate, table
