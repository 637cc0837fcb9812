"""What every processor connector offers, and the shapes it answers in.

A connector is a small adapter between the data map and one processor's API: it exports the rows
the processor holds about a customer, deletes a customer's data there, and compares the processor's
own settings with what the policy promises. Each is off until configured through settings, and
says why when it is off.

Invariants every connector keeps:
- Nothing it logs, raises or records holds personal data: errors are made from HTTP status codes,
  exception class names and URL paths (never query strings, which carry e-mail addresses), and
  jobs hold the processor's ids only.
- `delete_customer` is safe to repeat: every step is recorded in a `JobLedger` before and after it
  reaches the processor, and a repeated run finds what is left from those records and from the
  processor itself, never from memory. It answers `complete=True` only when the processor holds
  nothing more about the customer that the connector knows how to find.
- A processor that cannot be reached raises `ProcessorUnavailable` (an OSError, so an export build
  is retried); any other refusal raises `ProcessorError`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from django.utils.functional import Promise

if TYPE_CHECKING:
    from customers.models import Customer
    from processors.ledger import JobLedger


class ProcessorError(Exception):
    """The processor refused or failed a request. The message holds no personal data; `status` is
    the HTTP status when there was an answer."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProcessorUnavailable(ProcessorError, OSError):
    """The processor could not be reached, answered 5xx, or kept rate-limiting us: try later."""


class JobFailed(ProcessorError):
    """A job the processor ran for us (a bulk deletion) ended in failure."""


class JobStillRunning(ProcessorError):
    """A job is still queued or working after we waited for it; the next run polls it again."""


@dataclass(frozen=True)
class Drift:
    """One setting at a processor that does not match what the policy promises."""

    processor: str
    setting: str
    expected: str
    actual: str
    fix: str

    def as_json(self) -> dict[str, str]:
        return {
            "setting": self.setting,
            "expected": self.expected,
            "actual": self.actual,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class ExternalTable:
    """A table a processor holds about the customer (e.g. Zendesk tickets), exported beside the data
    map's own tables in access-request copies (`registry.export_tables`). `rows` is iterated once,
    lazily: a connector pages through its processor's API rather than load everything first. A
    connector that cannot reach its processor raises an OSError (`ProcessorUnavailable`): the build
    is then retried; any other exception fails the build for staff to look at."""

    name: str  # "zendesk.Ticket": the CSV is named after it
    columns: tuple[str, ...]
    rows: Iterable[Sequence[Any]]
    description: Promise | str = ""
    column_labels: tuple[Promise | str, ...] = ()


@dataclass(frozen=True)
class ErasureSubject:
    """What a processor may know a customer by, read from the portal before its rows go: the
    customer's and contacts' e-mail addresses, and the analytics client ids they gave us. Passed to
    connectors instead of the Customer row, because the deletion runs beside the purge's transaction
    (see `processors.services.erase_at_processors`)."""

    customer_id: int
    emails: tuple[str, ...]
    analytics_identifiers: tuple[tuple[int, str], ...] = ()  # (AnalyticsIdentifier pk, client id)


@dataclass
class ProcessorDeletion:
    """What one connector did for one customer in one run."""

    processor: str
    customer_id: int
    complete: bool = False
    # Model label ("zendesk.Ticket") -> the processor's ids deleted in this run.
    deleted: dict[str, list[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # The processor could not be reached: the purge asks it nothing more in this batch.
    unavailable: bool = False

    def failed(self, error: ProcessorError) -> ProcessorDeletion:
        self.errors.append(f"customer {self.customer_id}: {error}")
        self.unavailable = isinstance(error, ProcessorUnavailable)
        return self


@dataclass(frozen=True)
class ConnectorStatus:
    configured: bool
    reason: str  # why it is off, or what it is connected to (no secrets)


class Connector(abc.ABC):
    """One processor's connector. Subclasses set the class attributes and implement the methods."""

    key: ClassVar[str]  # "zendesk": the ProcessorJob/ProcessorCheck `processor` value
    name: ClassVar[str]  # "Zendesk"
    processor: ClassVar[str]  # the data map's PROCESSORS key ("zendesk", "google", "aws")
    categories: ClassVar[tuple[str, ...]]  # the data-map categories whose data it holds
    # Whether the purge deletes customers' data through it (S3 holds nothing linked to a customer).
    erases_customers: ClassVar[bool] = True
    # The data-map category each exported table belongs to: {"zendesk.Ticket": "correspondence"}.
    export_categories: ClassVar[dict[str, str]] = {}

    @abc.abstractmethod
    def status(self) -> ConnectorStatus:
        """Whether the settings turn the connector on, and if not, which are missing."""

    def is_configured(self) -> bool:
        return self.status().configured

    def export_table(self, customer: Customer, name: str) -> ExternalTable | None:
        """The table `name` (one of `export_categories`) about `customer`; None when off."""
        return None

    def export_tables(self, customer: Customer) -> list[ExternalTable]:
        tables = [self.export_table(customer, name) for name in self.export_categories]
        return [table for table in tables if table is not None]

    @abc.abstractmethod
    def delete_customer(self, subject: ErasureSubject, *, ledger: JobLedger) -> ProcessorDeletion:
        """Delete what the processor holds about `subject`, step by step through `ledger`."""

    @abc.abstractmethod
    def check_settings(self) -> list[Drift]:
        """Compare the processor's settings with the data map; [] when they match."""
