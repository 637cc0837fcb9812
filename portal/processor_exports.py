"""The processors' tables in access-request exports: the connectors (processors) provide
them, the export builder (access_requests.export) takes them. Neither app imports the other for
it; the portal wires them together at start (portal/apps.py)."""

from __future__ import annotations

from collections.abc import Callable

from access_requests.export import ExternalTable, register_external_table
from customers.models import Customer
from processors import registry
from processors.base import ExternalTable as ProcessorTable


def _for_export(
    provider: Callable[[Customer], ProcessorTable | None],
) -> Callable[[Customer], ExternalTable | None]:
    def export_provider(customer: Customer) -> ExternalTable | None:
        table = provider(customer)
        if table is None:
            return None
        return ExternalTable(
            name=table.name,
            columns=table.columns,
            rows=table.rows,
            description=table.description,
            column_labels=table.column_labels,
        )

    return export_provider


def register_processor_exports() -> None:
    for category_key, provider in registry.export_providers():
        register_external_table(category_key, _for_export(provider))
