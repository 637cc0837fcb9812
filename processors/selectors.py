"""Reads for the processor connectors: what a processor may know a customer by, the latest checks,
the latest deletion jobs, and which customers a processor has finished erasing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from django.db.models import Exists, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from customers.models import Contact, Contract, Correspondence, Customer
from processors.base import ErasureSubject
from processors.models import ProcessorCheck, ProcessorJob, VaultConfirmation
from retention.models import AnalyticsIdentifier


def customer_emails(customer_id: int) -> tuple[str, ...]:
    """Every address that is or was the customer's (see `erasure_subjects`), lower-cased, once."""
    return erasure_subjects([customer_id])[customer_id].emails


def erasure_subjects(customer_ids: Sequence[int]) -> dict[int, ErasureSubject]:
    """Each customer's e-mail addresses (hers, her contacts', and the ones her correspondence was
    with, which may be earlier addresses) and analytics ids, in four queries for any number."""
    emails: dict[int, list[str]] = defaultdict(list)
    for customer_id, email in Customer.objects.filter(pk__in=customer_ids).values_list("pk", "email"):
        emails[customer_id].append(email)
    for model in (Contact, Correspondence):
        for customer_id, email in (
            model.objects.filter(customer_id__in=customer_ids)
            .exclude(email="")
            .order_by()
            .values_list("customer_id", "email")
            .distinct()
        ):
            emails[customer_id].append(email)
    identifiers: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for pk, customer_id, client_id in (
        AnalyticsIdentifier.objects.filter(customer_id__in=customer_ids)
        .order_by("pk")
        .values_list("pk", "customer_id", "client_id")
    ):
        identifiers[customer_id].append((pk, client_id))
    return {
        customer_id: ErasureSubject(
            customer_id=customer_id,
            emails=tuple(
                dict.fromkeys(email.strip().lower() for email in emails[customer_id] if email.strip())
            ),
            analytics_identifiers=tuple(identifiers[customer_id]),
        )
        for customer_id in customer_ids
    }


def analytics_identifiers_for(customer_id: int) -> list[AnalyticsIdentifier]:
    """The analytics ids this customer gave us, oldest first (their own page shows them)."""
    return list(AnalyticsIdentifier.objects.filter(customer_id=customer_id).order_by("created_at", "pk"))


def erased_at(processor_keys: Iterable[str]) -> Q:
    """Customers that every one of these processors has finished erasing since their relationship
    last ended (the latest end of their contracts; any time, for a customer who never had one).
    A marker from before a relationship was revived and ended again does not count: the processor
    may hold new data since. Correlated subqueries on the indexes processorjob_customer_idx and
    contract_customer_end_idx; asked only while a connector is configured."""
    relationship_end = (
        Contract.objects.filter(customer_id=OuterRef(OuterRef("pk")))
        .order_by()
        .values("customer_id")
        .annotate(latest=Max("ended_on"))
        .values("latest")
    )
    condition = Q()
    for key in processor_keys:
        markers = ProcessorJob.objects.filter(
            customer_id=OuterRef("pk"),
            processor=key,
            kind=ProcessorJob.ERASURE,
            status=ProcessorJob.Status.COMPLETED,
            finished_at__date__gt=Coalesce(Subquery(relationship_end), Value(date.min)),
        )
        condition &= Q(Exists(markers))
    return condition


def latest_checks(processor_keys: Iterable[str]) -> dict[str, ProcessorCheck]:
    """The latest check of each processor (index processorcheck_latest_idx: one query each)."""
    latest = {}
    for key in processor_keys:
        check = ProcessorCheck.objects.filter(processor=key).order_by("-checked_at", "-pk").first()
        if check is not None:
            latest[key] = check
    return latest


def latest_jobs(processor_key: str, *, limit: int = 10) -> list[ProcessorJob]:
    """The processor's latest deletion steps, markers left out (index processorjob_latest_idx)."""
    return list(
        ProcessorJob.objects.filter(processor=processor_key)
        .exclude(kind=ProcessorJob.ERASURE)
        .order_by("-created_at", "-pk")[:limit]
    )


def outstanding_job_count(processor_key: str) -> int:
    return (
        ProcessorJob.objects.filter(processor=processor_key)
        .exclude(status=ProcessorJob.Status.COMPLETED)
        .count()
    )


def latest_vault_confirmation() -> VaultConfirmation | None:
    """Staff's latest word that Google Vault keeps no customer mail."""
    return VaultConfirmation.objects.order_by("-confirmed_on", "-pk").first()


# The check runs daily; a latest check older than this means the scheduler has stopped checking.
CHECK_STALE_AFTER = timedelta(hours=48)


def processor_problems() -> list[str]:
    """What the latest checks of the configured processors say is wrong, one line each: drift, a
    check that failed, or no check for two days. For /healthz and the admin's banner; ids and
    setting names only."""
    from processors import registry

    configured = registry.connectors()
    latest = latest_checks(connector.key for connector in configured)
    stale_before = timezone.now() - CHECK_STALE_AFTER
    problems = []
    for connector in configured:
        check = latest.get(connector.key)
        if check is None or check.checked_at < stale_before:
            problems.append(f"{connector.name}: not checked in the last {CHECK_STALE_AFTER.days} days")
            continue
        if check.error:
            problems.append(f"{connector.name}: the check failed: {check.error}")
        for item in check.drift:
            problems.append(
                f"{connector.name}: {item['setting']} is {item['actual']}; the policy says {item['expected']}"
            )
    return problems
