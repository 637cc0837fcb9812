"""Erasure on request (GDPR art. 17): a former customer asks on /my-data/, confirms with the code
we e-mail her, the Privacy officer approves (or rejects, or the setting approves at once), the
purges' own code deletes her now, and she gets a receipt of what was deleted and what was kept,
why and until when. A backup restored afterwards is put right by `reapply_erasures`.

Committed data (`transaction=True`): the purges take their locks and the processors' steps are
recorded on a connection of their own, as in production."""

from __future__ import annotations

import re
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from access_requests import erasure
from access_requests.models import ErasureRequest
from customers.models import Contact, Correspondence, Customer, Invoice
from retention.models import PurgeRun
from retention.services import legal_hold_place
from tests.access_requests.conftest import issue_invoice
from tests.factories import (
    ContactFactory,
    ContractFactory,
    CorrespondenceFactory,
    CustomerFactory,
    UserFactory,
)
from tests.security.sign_in import sign_in_with_second_factor

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kari(settings: Any, export_storage_dir: Path) -> Customer:
    """A former customer: her contract ended ten days ago (her 3-month window is still open), with
    a contact, a conversation and two issued invoices."""
    settings.ERASURE_AUTO_APPROVE = False
    customer = CustomerFactory.create(
        name="Kari Nordmann Design",
        email="kari@nordmann.example.no",
        user=UserFactory.create(username="kari"),
    )
    ended = timezone.localdate() - timedelta(days=10)
    ContractFactory.create(customer=customer, started_on=date(2024, 1, 1), ended_on=ended)
    ContactFactory.create(customer=customer, name="Ola Regnskap", email="ola@nordmann.example.no")
    CorrespondenceFactory.create(customer=customer, subject="Flytting av nettsiden")
    issue_invoice(customer, issued_on=date(2024, 6, 30))
    issue_invoice(customer, issued_on=ended - timedelta(days=5))
    return customer


def sign_in(client: Client, customer: Customer) -> None:
    assert customer.user is not None
    client.force_login(customer.user)


def the_code() -> str:
    (message,) = [m for m in mail.outbox if "kode" in m.subject.lower() or "code" in m.subject.lower()]
    found = re.search(r"\b(\d{6})\b", str(message.body))
    assert found is not None
    return found.group(1)


def ask_and_confirm(client: Client, customer: Customer) -> tuple[ErasureRequest, str]:
    """She asks on /my-data/ and enters the code from her e-mail; answers the request and the
    receipt page's address."""
    sign_in(client, customer)
    asked = client.post(reverse("access_requests:erasure_start"))
    assert asked.status_code == 302
    erasure_request = ErasureRequest.objects.get(former_customer_id=customer.pk)
    assert erasure_request.status == ErasureRequest.Status.AWAITING_CODE
    confirmed = client.post(asked["Location"], {"code": the_code()})
    assert confirmed.status_code == 302, confirmed.content.decode()[:500]
    erasure_request.refresh_from_db()
    return erasure_request, confirmed["Location"]


def test_a_customer_with_an_active_contract_is_told_why_she_cannot_ask(
    client: Client, alice: Customer
) -> None:
    sign_in(client, alice)
    page = client.get(reverse("access_requests:my_data")).content.decode()
    assert "aktiv avtale" in page and "fakturere" in page
    assert reverse("access_requests:erasure_start") not in page

    refused = client.post(reverse("access_requests:erasure_start"), follow=True)
    assert "aktiv avtale" in refused.content.decode()
    assert not ErasureRequest.objects.exists()


def test_a_wrong_or_late_code_deletes_nothing(client: Client, kari: Customer, time_machine: Any) -> None:
    sign_in(client, kari)
    asked = client.post(reverse("access_requests:erasure_start"))
    wrong = client.post(asked["Location"], {"code": "000000" if the_code() != "000000" else "111111"})
    assert wrong.status_code == 400
    assert "Det er ikke koden vi sendte" in wrong.content.decode()

    time_machine.move_to(timezone.now() + timedelta(minutes=16))
    late = client.post(asked["Location"], {"code": the_code()})
    assert late.status_code == 400
    assert ErasureRequest.objects.get().status == ErasureRequest.Status.AWAITING_CODE
    assert Customer.objects.filter(pk=kari.pk).exists()


def test_bob_cannot_see_or_confirm_karis_request(client: Client, kari: Customer, bob: Customer) -> None:
    sign_in(client, kari)
    asked = client.post(reverse("access_requests:erasure_start"))
    sign_in(client, bob)
    assert client.get(asked["Location"]).status_code == 404
    assert client.post(asked["Location"], {"code": the_code()}).status_code == 404
    client.logout()
    assert client.get(asked["Location"]).status_code == 302  # to the sign-in


def test_approved_erasure_deletes_everything_but_her_invoices_and_the_receipt_says_so(
    client: Client, kari: Customer, privacy_officer: Any, celery_eager: None
) -> None:
    erasure_request, receipt_url = ask_and_confirm(client, kari)
    assert erasure_request.status == ErasureRequest.Status.RECEIVED
    assert erasure_request.due_on is not None
    waiting = Client().get(receipt_url)
    assert waiting.status_code == 200 and "Mottatt" in waiting.content.decode()

    staff = Client()
    sign_in_with_second_factor(staff, privacy_officer)
    approve_url = reverse("admin:access_requests_erasurerequest_approve", args=[erasure_request.pk])
    assert staff.post(approve_url).status_code == 302

    erasure_request.refresh_from_db()
    assert erasure_request.status == ErasureRequest.Status.DONE, erasure_request.last_error
    assert not Customer.objects.filter(pk=kari.pk).exists()
    assert not Contact.objects.filter(email="ola@nordmann.example.no").exists()
    assert not Correspondence.objects.filter(subject="Flytting av nettsiden").exists()
    kept = Invoice.objects.filter(former_customer_id=kari.pk)
    assert kept.count() == 2 and all(invoice.customer_id is None for invoice in kept)
    runs = PurgeRun.objects.filter(erasure_of=kari.pk)
    assert {run.category for run in runs} == {"correspondence", "access_request_exports", "customer_account"}

    receipt = erasure_request.receipt
    deleted = {row["category"]: row["count"] for row in receipt["deleted"]}
    assert deleted["customer_account"] >= 2 and deleted["correspondence"] == 1
    (invoices,) = [item for item in receipt["kept"] if item["kind"] == "invoices"]
    last_year = (timezone.localdate() - timedelta(days=15)).year
    assert (invoices["first_year"], invoices["last_year"], invoices["count"]) == (2024, last_year, 2)
    assert invoices["until"] == f"{last_year + 5}-12-31"
    assert "kari" not in str(receipt).lower() and "nordmann" not in str(receipt).lower()

    page = Client().get(receipt_url).content.decode()
    assert f"Fakturaer 2024–{last_year}" in page
    assert f"31. desember {last_year + 5}" in page and "bokføringsloven § 13" in page
    english = Client()
    english.cookies["django_language"] = "en"
    assert f"Invoices 2024–{last_year}" in english.get(receipt_url).content.decode()

    (receipt_mail,) = [m for m in mail.outbox if "kvittering" in m.subject.lower()]
    assert receipt_mail.to == ["kari@nordmann.example.no"]
    assert (
        f"Fakturaer 2024–{last_year}" in receipt_mail.body
        and f"Invoices 2024–{last_year}" in receipt_mail.body
    )


def test_a_legal_hold_stops_the_approval(
    client: Client, kari: Customer, privacy_officer: Any, celery_eager: None
) -> None:
    erasure_request, _receipt_url = ask_and_confirm(client, kari)
    legal_hold_place(customer=kari, reason="Tvist", ends_on=None, placed_by=privacy_officer)

    with pytest.raises(erasure.ErasureRefused) as refused:
        erasure.erasure_approve(erasure_request=erasure_request, decided_by=privacy_officer)

    assert refused.value.code == "hold"
    assert Customer.objects.filter(pk=kari.pk).exists()


def test_rejection_tells_her_why(client: Client, kari: Customer, privacy_officer: Any) -> None:
    erasure_request, receipt_url = ask_and_confirm(client, kari)
    staff = Client()
    sign_in_with_second_factor(staff, privacy_officer)
    reject_url = reverse("admin:access_requests_erasurerequest_reject", args=[erasure_request.pk])

    assert staff.post(reject_url, {"reason": ""}).status_code == 200  # the form asks for it
    assert staff.post(reject_url, {"reason": "Uoppgjort krav om betaling"}).status_code == 302

    assert "Uoppgjort krav om betaling" in Client().get(receipt_url).content.decode()
    assert any("Uoppgjort krav om betaling" in m.body for m in mail.outbox)
    assert Customer.objects.filter(pk=kari.pk).exists()


def test_support_cannot_approve(client: Client, kari: Customer, support_user: Any) -> None:
    erasure_request, _receipt_url = ask_and_confirm(client, kari)
    staff = Client()
    sign_in_with_second_factor(staff, support_user)
    approve_url = reverse("admin:access_requests_erasurerequest_approve", args=[erasure_request.pk])
    assert staff.post(approve_url).status_code == 403
    assert Customer.objects.filter(pk=kari.pk).exists()


def test_auto_approval_erases_at_once_after_her_code(
    client: Client, kari: Customer, settings: Any, celery_eager: None
) -> None:
    settings.ERASURE_AUTO_APPROVE = True
    erasure_request, receipt_url = ask_and_confirm(client, kari)
    assert erasure_request.status == ErasureRequest.Status.DONE
    assert not Customer.objects.filter(pk=kari.pk).exists()
    assert "Ferdig: slettet" in Client().get(receipt_url).content.decode()


def test_an_unknown_receipt_link_is_a_404(client: Client) -> None:
    assert client.get(reverse("access_requests:erasure_receipt", args=["x" * 43])).status_code == 404
    assert client.get(reverse("access_requests:erasure_receipt", args=["short"])).status_code == 404


def _database() -> dict[str, str]:
    settings_dict = connection.settings_dict
    return {
        "name": settings_dict["NAME"],
        "host": settings_dict.get("HOST") or "127.0.0.1",
        "port": str(settings_dict.get("PORT") or 5432),
        "user": settings_dict.get("USER") or "postgres",
    }


def _pg(command: str, *arguments: str) -> None:
    database = _database()
    subprocess.run(
        [command, "-h", database["host"], "-p", database["port"], "-U", database["user"], *arguments],
        check=True,
        capture_output=True,
    )


def test_after_a_backup_from_before_her_erasure_is_restored_reapply_erases_her_again(
    client: Client, kari: Customer, privacy_officer: Any, celery_eager: None, tmp_path: Path, settings: Any
) -> None:
    # Another former customer who asked for nothing, and must stay.
    other = CustomerFactory.create(name="Per Hansen", email="per@hansen.example.no")
    ContractFactory.create(customer=other, ended_on=timezone.localdate() - timedelta(days=10))
    backup = tmp_path / "before.dump"
    _pg("pg_dump", "-Fc", "-f", str(backup), _database()["name"])

    settings.ERASURE_AUTO_APPROVE = True
    erasure_request, _receipt_url = ask_and_confirm(client, kari)
    assert erasure_request.status == ErasureRequest.Status.DONE
    # The erasure left only keyed fingerprints: not her address in any form.
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in erasure_request.fingerprints)

    connections.close_all()
    _pg("pg_restore", "--clean", "--if-exists", "--no-owner", "-d", _database()["name"], str(backup))
    assert Customer.objects.filter(pk=kari.pk).exists()  # she is back with the backup
    assert not ErasureRequest.objects.exists()

    call_command("reapply_erasures")

    assert not Customer.objects.filter(pk=kari.pk).exists()
    assert Customer.objects.filter(pk=other.pk).exists()
    assert ErasureRequest.objects.filter(pk=erasure_request.pk, status="done").exists()
