"""Processor connectors: Zendesk, Google Workspace, Google Analytics and S3 behind one interface
(see `base`). The purge asks them in this order: a customer's mail goes after her tickets and
before the portal's own rows.

`connectors()` answers the configured ones, from settings alone (no import of a client library, no
network): the purge asks it on every run and must stay fast when none is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from processors.base import (
    Connector,
    ConnectorStatus,
    Drift,
    ErasureSubject,
    ExternalTable,
    ProcessorDeletion,
    ProcessorError,
    ProcessorUnavailable,
)
from processors.google_analytics import GoogleAnalyticsConnector
from processors.google_workspace import GoogleWorkspaceConnector
from processors.s3 import S3Connector
from processors.zendesk import ZendeskConnector

if TYPE_CHECKING:
    from customers.models import Customer

CONNECTOR_CLASSES: tuple[type[Connector], ...] = (
    ZendeskConnector,
    GoogleWorkspaceConnector,
    GoogleAnalyticsConnector,
    S3Connector,
)


def all_connectors() -> list[Connector]:
    """Every connector, configured or not (the admin shows why the others are off)."""
    return [connector_class() for connector_class in CONNECTOR_CLASSES]


def connectors() -> list[Connector]:
    """The configured connectors."""
    return [connector for connector in all_connectors() if connector.is_configured()]


def erasing_connectors() -> list[Connector]:
    """The configured connectors through which the purge deletes a customer's data."""
    return [connector for connector in connectors() if connector.erases_customers]


def connector(key: str) -> Connector:
    for candidate in all_connectors():
        if candidate.key == key:
            return candidate
    raise KeyError(f"no processor connector {key!r}")


def export_tables(customer: Customer, category_key: str) -> list[ExternalTable]:
    """The tables the configured connectors hold about `customer` in one data-map category
    (Zendesk's tickets under "correspondence"), for the access-request export; a connector that is
    off answers none. Their rows are read lazily, as the export writes them."""
    tables = []
    for connector_class in CONNECTOR_CLASSES:
        for name, exported_under in connector_class.export_categories.items():
            if exported_under == category_key and (table := connector_class().export_table(customer, name)):
                tables.append(table)
    return tables


__all__ = [
    "CONNECTOR_CLASSES",
    "Connector",
    "ConnectorStatus",
    "Drift",
    "ErasureSubject",
    "ExternalTable",
    "GoogleAnalyticsConnector",
    "GoogleWorkspaceConnector",
    "ProcessorDeletion",
    "ProcessorError",
    "ProcessorUnavailable",
    "S3Connector",
    "ZendeskConnector",
    "all_connectors",
    "connector",
    "connectors",
    "erasing_connectors",
    "export_tables",
]
