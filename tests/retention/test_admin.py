"""Staff screens for retention: when each customer's data goes, legal holds, the purge runs and
the preview of a purge.

Time travels only to days before the real today (see test_purges.py); pages are read in the admin's
default language, Norwegian, so dates read 31.12.2031."""

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from customers import services as customer_services
from customers.models import Customer
from retention.models import DeletionLog, LegalHold, PurgeRun
from retention.services import legal_hold_place, purge_run
from tests.factories import (
    ContactFactory,
    ContractFactory,
    CorrespondenceFactory,
    CustomerFactory,
    InvoiceFactory,
    UserFactory,
)
from tests.security.sign_in import sign_in_with_second_factor

pytestmark = pytest.mark.django_db

TODAY = date(2026, 6, 15)


@pytest.fixture
def on_today() -> Iterator[None]:
    with time_machine.travel(timezone.make_aware(timezone.datetime(2026, 6, 15, 12, 0)), tick=False):
        yield


@pytest.fixture
def staff_client(client: Client, superuser: Any) -> Client:
    sign_in_with_second_factor(client, superuser)
    return client


def former_customer(name: str, ended_on: date) -> Customer:
    customer = CustomerFactory.create(name=name)
    ContractFactory.create(customer=customer, started_on=date(2020, 1, 1), ended_on=ended_on)
    return customer


def _customer_with_everything(index: int, holder: Any) -> Customer:
    customer = former_customer(f"Kunde {index}", date(2025, 6, 30))
    ContactFactory.create(customer=customer)
    invoice = customer_services.invoice_issue(
        invoice=InvoiceFactory.create(customer=customer), issued_on=date(2025, 1, 31)
    )
    customer_services.payment_register(invoice=invoice, amount=Decimal("100.00"), paid_on=date(2025, 2, 5))
    CorrespondenceFactory.create(customer=customer)
    if index % 3 == 0:
        legal_hold_place(customer=customer, reason="Tvist", ends_on=None, placed_by=holder)
    return customer


def _queries_for(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(queries)


@pytest.mark.parametrize(
    "query",
    ["", "?deletion_due=overdue", "?deletion_due=30d", "?deletion_due=3m", "?deletion_due=active",
     "?deletion_due=hold", "?q=Kunde"],
)  # fmt: skip
def test_the_customer_changelist_does_not_grow_queries_with_rows(
    client: Client, superuser: Any, query: str
) -> None:
    sign_in_with_second_factor(client, superuser)
    url = reverse("admin:customers_customer_changelist") + query
    for index in range(5):
        _customer_with_everything(index, superuser)
    with_five = _queries_for(client, url)
    for index in range(5, 50):
        _customer_with_everything(index, superuser)
    with_fifty = _queries_for(client, url)
    assert with_fifty == with_five, f"{query}: {with_five} queries for 5 rows, {with_fifty} for 50"


@pytest.mark.parametrize(
    "name",
    ["admin:retention_legalhold_changelist", "admin:retention_purgerun_changelist",
     "admin:retention_deletionlog_changelist"],
)  # fmt: skip
def test_retention_changelists_do_not_grow_queries_with_rows(
    client: Client, superuser: Any, name: str
) -> None:
    sign_in_with_second_factor(client, superuser)
    url = reverse(name)

    def add(count: int) -> None:
        for index in range(count):
            held = CustomerFactory.create()
            legal_hold_place(customer=held, reason="Tvist", ends_on=None, placed_by=superuser)
            former_customer(f"Borte {index}", date(2025, 1, 31))
            purge_run(category="customer_account")  # one run, and its deletion log lines, per row

    add(5)
    with_five = _queries_for(client, url)
    add(45)
    with_fifty = _queries_for(client, url)
    assert with_fifty == with_five, f"{name}: {with_five} queries for 5 rows, {with_fifty} for 50"


def test_the_deletion_due_column_shows_the_day_and_the_invoices_that_outlive_the_account(
    staff_client: Client, on_today: None
) -> None:
    customer = former_customer("Fjord Design AS", date(2026, 4, 30))
    customer_services.invoice_issue(
        invoice=InvoiceFactory.create(customer=customer), issued_on=date(2026, 2, 1)
    )
    ContractFactory.create(customer=CustomerFactory.create(name="Aktiv Kunde AS"))
    page = staff_client.get(reverse("admin:customers_customer_changelist")).content.decode()
    assert "31.07.2026" in page  # deletable from: 3 months after 30 April, plus a day
    assert "31.12.2031" in page and "bokføringsloven § 13" in page
    assert "oppbevares så lenge kundeforholdet er aktivt" in page


def test_the_deletion_due_filter_sorts_customers_by_when_their_data_goes(
    staff_client: Client, superuser: Any, on_today: None
) -> None:
    former_customer("Forfalt AS", date(2026, 3, 14))  # deletable today
    former_customer("Snart AS", date(2026, 4, 1))  # 2 July
    former_customer("Sommer AS", date(2026, 6, 1))  # 2 September
    former_customer("Grense AS", date(2026, 6, 14))  # 15 September: three months to the day
    CustomerFactory.create(name="Uten Kontrakt AS")  # registered today: 16 September
    ContractFactory.create(customer=CustomerFactory.create(name="Aktiv AS"))
    held = former_customer("Holdt AS", date(2025, 1, 31))
    legal_hold_place(customer=held, reason="Politiet ber om data", ends_on=None, placed_by=superuser)
    everyone = {
        "Forfalt AS",
        "Snart AS",
        "Sommer AS",
        "Grense AS",
        "Uten Kontrakt AS",
        "Aktiv AS",
        "Holdt AS",
    }

    def listed(value: str) -> set[str]:
        response = staff_client.get(reverse("admin:customers_customer_changelist"), {"deletion_due": value})
        assert response.status_code == 200
        return {name for name in everyone if name in response.content.decode()}

    assert listed("overdue") == {"Forfalt AS"}
    assert listed("30d") == {"Snart AS"}
    assert listed("3m") == {"Snart AS", "Sommer AS", "Grense AS"}
    assert listed("active") == {"Aktiv AS"}
    assert listed("hold") == {"Holdt AS"}


def test_the_customer_page_shows_the_schedule_the_holds_and_a_way_to_place_one(
    staff_client: Client, superuser: Any, on_today: None
) -> None:
    customer = former_customer("Fjord Design AS", date(2026, 4, 30))
    legal_hold_place(
        customer=customer, reason="Tvist om faktura", ends_on=date(2026, 12, 31), placed_by=superuser
    )
    page = staff_client.get(reverse("admin:customers_customer_change", args=[customer.pk])).content.decode()
    assert "slettesperre til og med 31.12.2026" in page
    assert "Tvist om faktura" in page
    assert f"{reverse('admin:retention_legalhold_add')}?customer={customer.pk}" in page


def test_support_staff_see_the_schedule_but_not_the_holds(client: Client, support_user: Any) -> None:
    customer = former_customer("Fjord Design AS", date(2025, 4, 30))
    legal_hold_place(customer=customer, reason="Hemmelig sak", ends_on=None, placed_by=None)
    sign_in_with_second_factor(client, support_user)
    page = client.get(reverse("admin:customers_customer_change", args=[customer.pk])).content.decode()
    assert "slettesperre til den oppheves" in page
    assert "Hemmelig sak" not in page
    assert reverse("admin:retention_legalhold_add") not in page


def test_the_privacy_officer_places_and_releases_a_hold_and_both_are_audited(
    client: Client, privacy_officer: Any
) -> None:
    customer = former_customer("Fjord Design AS", date(2025, 4, 30))
    sign_in_with_second_factor(client, privacy_officer)
    add_url = reverse("admin:retention_legalhold_add")
    assert client.get(add_url, {"customer": customer.pk}).status_code == 200
    response = client.post(
        add_url, {"customer": customer.pk, "reason": "Tvist om faktura 10042", "ends_on": ""}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    hold = LegalHold.objects.get(customer=customer)
    assert hold.placed_by == privacy_officer
    assert hold.is_active()
    placed = AuditEvent.objects.get(kind=AuditEvent.Kind.HOLD_PLACED)
    assert (placed.actor_id, placed.customer_id, placed.object_id) == (
        privacy_officer.pk,
        customer.pk,
        str(hold.pk),
    )

    changelist = reverse("admin:retention_legalhold_changelist")
    assert "Tvist om faktura 10042" in client.get(changelist, {"status": "active"}).content.decode()
    response = client.post(changelist, {"action": "release_holds", "_selected_action": [hold.pk]})
    assert response.status_code == 302
    hold.refresh_from_db()
    assert hold.released_at is not None
    assert hold.released_by == privacy_officer
    released = AuditEvent.objects.get(kind=AuditEvent.Kind.HOLD_RELEASED)
    assert (released.actor_id, released.customer_id) == (privacy_officer.pk, customer.pk)


def test_a_hold_cannot_end_in_the_past(staff_client: Client) -> None:
    customer = CustomerFactory.create()
    response = staff_client.post(
        reverse("admin:retention_legalhold_add"),
        {
            "customer": customer.pk,
            "reason": "Tvist",
            "ends_on": (timezone.localdate() - timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code == 200
    assert "En slettesperre kan ikke ha en sluttdato som er passert." in response.content.decode()
    assert not LegalHold.objects.exists()


def test_an_active_hold_cannot_be_deleted_and_a_placed_hold_is_not_edited(
    staff_client: Client, superuser: Any
) -> None:
    customer = CustomerFactory.create()
    hold = legal_hold_place(customer=customer, reason="Tvist", ends_on=None, placed_by=superuser)
    assert staff_client.get(reverse("admin:retention_legalhold_delete", args=[hold.pk])).status_code == 403
    response = staff_client.post(
        reverse("admin:retention_legalhold_changelist"),
        {"action": "delete_selected", "_selected_action": [hold.pk], "post": "yes"},
    )
    assert response.status_code in (200, 403)
    assert LegalHold.objects.filter(pk=hold.pk).exists()
    staff_client.post(
        reverse("admin:retention_legalhold_change", args=[hold.pk]),
        {"reason": "Endret", "ends_on": "2027-01-01"},
    )
    hold.refresh_from_db()
    assert (hold.reason, hold.ends_on) == ("Tvist", None)


def test_a_staff_member_without_hold_permissions_cannot_place_one(client: Client, support_user: Any) -> None:
    sign_in_with_second_factor(client, support_user)
    assert client.get(reverse("admin:retention_legalhold_add")).status_code == 403


@pytest.fixture
def finished_run(superuser: Any) -> PurgeRun:
    customer = former_customer("Borte AS", date(2025, 1, 31))
    ContactFactory.create(customer=customer)
    return purge_run(category="customer_account")


@pytest.mark.parametrize("model", ["purgerun", "deletionlog"])
def test_purge_runs_and_the_deletion_log_are_read_only_even_for_a_superuser(
    staff_client: Client, finished_run: PurgeRun, model: str
) -> None:
    obj = finished_run if model == "purgerun" else DeletionLog.objects.filter(run=finished_run).first()
    assert obj is not None
    change_url = reverse(f"admin:retention_{model}_change", args=[obj.pk])
    assert staff_client.get(reverse(f"admin:retention_{model}_add")).status_code == 403
    assert staff_client.post(reverse(f"admin:retention_{model}_add"), {}).status_code == 403
    assert staff_client.post(change_url, {"category": "changed"}).status_code == 403
    assert staff_client.get(reverse(f"admin:retention_{model}_delete", args=[obj.pk])).status_code == 403
    assert (
        staff_client.post(
            reverse(f"admin:retention_{model}_delete", args=[obj.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    view = staff_client.get(change_url)
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    changelist = staff_client.get(
        reverse(f"admin:retention_{model}_changelist"), {"category": "customer_account"}
    )
    assert changelist.status_code == 200
    assert 'value="delete_selected"' not in changelist.content.decode()


def test_the_purge_run_list_reads_counts_per_model(staff_client: Client, finished_run: PurgeRun) -> None:
    page = staff_client.get(
        reverse("admin:retention_purgerun_changelist"), {"status": "finished", "dry_run": "0"}
    ).content.decode()
    assert "customers.Customer: 1" in page
    assert "customers.Contact: 1" in page
    PurgeRun.objects.create(
        category="correspondence",
        as_of=date(2026, 6, 1),
        status=PurgeRun.Status.FAILED,
        errors=["OperationalError: <server closed the connection>"],
        finished_at=timezone.now(),
    )
    failed = staff_client.get(reverse("admin:retention_purgerun_changelist"), {"status": "failed"})
    assert "<li>OperationalError: &lt;server closed the connection&gt;</li>" in failed.content.decode()
    customer_id = DeletionLog.objects.filter(model="customers.Customer").get().customer_id
    found = staff_client.get(reverse("admin:retention_deletionlog_changelist"), {"q": str(customer_id)})
    assert "customers.Contact" in found.content.decode()
    assert (
        staff_client.get(reverse("admin:retention_deletionlog_changelist"), {"q": "not-a-number"}).status_code
        == 200
    )


# --- The preview page --------------------------------------------------------------------------


def preview_url() -> str:
    return reverse("admin:retention_purgerun_preview")


def test_the_preview_shows_what_goes_today_with_the_customers_and_deletes_nothing(
    staff_client: Client, on_today: None
) -> None:
    gone = former_customer("Forfalt AS", date(2026, 1, 31))
    CorrespondenceFactory.create(customer=gone)
    later = former_customer("Senere AS", date(2026, 5, 31))
    response = staff_client.get(preview_url())
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="2026-06-15"' in page
    assert "customers.Correspondence" in page
    assert reverse("admin:customers_customer_change", args=[gone.pk]) in page
    assert "Forfalt AS" in page
    assert "Senere AS" not in page
    assert Customer.objects.filter(pk__in=[gone.pk, later.pk]).count() == 2
    assert not PurgeRun.objects.exists()


def test_the_preview_looks_ahead_to_a_chosen_day(staff_client: Client, on_today: None) -> None:
    later = former_customer("Senere AS", date(2026, 5, 31))
    page = staff_client.get(preview_url(), {"as_of": "2026-09-01"}).content.decode()
    assert reverse("admin:customers_customer_change", args=[later.pk]) in page
    assert "31.05.2026" in page  # the relationship's end, in the customers table
    assert "Senere AS" in page


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("2027-02-30", "Oppgi en gyldig dato"),  # Django's own message, in the admin's Norwegian
        ("tomorrow", "Oppgi en gyldig dato"),
        ("2026-06-14", "Velg i dag eller en senere dag."),
        ("2040-01-01", "Velg en dag senest 15.06.2032."),
    ],
)
def test_a_bad_day_shows_the_error_on_the_form(
    staff_client: Client, on_today: None, as_of: str, message: str
) -> None:
    response = staff_client.get(preview_url(), {"as_of": as_of})
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page
    assert "customers.Correspondence" not in page


def test_only_staff_who_may_see_purge_runs_open_the_preview(
    client: Client, support_user: Any, privacy_officer: Any
) -> None:
    sign_in_with_second_factor(client, support_user)
    assert client.get(preview_url()).status_code == 403
    sign_in_with_second_factor(client, privacy_officer)
    assert client.get(preview_url()).status_code == 200
    assert preview_url() in client.get(reverse("admin:retention_purgerun_changelist")).content.decode()


def test_the_preview_names_customers_only_to_staff_who_may_see_customers(client: Client) -> None:
    former_customer("Forfalt AS", date(2025, 1, 31))
    auditor = UserFactory.create(username="revisor", is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_purgerun"))
    sign_in_with_second_factor(client, auditor)
    page = client.get(preview_url()).content.decode()
    assert "customers.Customer" in page
    assert "Forfalt AS" not in page
