"""Staff screens for customers, contracts, invoices, payments, correspondence and contacts, one
screen a module.

Every changelist loads its rows in a constant number of queries (relationship status is one SQL
annotation, related names come through select_related); tests hold each one to that with 50 rows.
"""

from customers.admin.contacts import ContactAdmin
from customers.admin.contracts import ContractAdmin
from customers.admin.correspondence import CorrespondenceAdmin
from customers.admin.customers import (
    CUSTOMER_ADMIN_EXTENSIONS,
    RELATIONSHIP_LABELS,
    CustomerAdmin,
    CustomerAdminExtension,
    RelationshipStatusFilter,
    customer_admin_extension,
)
from customers.admin.invoices import InvoiceAdmin, PaidFilter
from customers.admin.payments import PaymentAdmin

__all__ = [
    "CUSTOMER_ADMIN_EXTENSIONS",
    "RELATIONSHIP_LABELS",
    "ContactAdmin",
    "ContractAdmin",
    "CorrespondenceAdmin",
    "CustomerAdmin",
    "CustomerAdminExtension",
    "InvoiceAdmin",
    "PaidFilter",
    "PaymentAdmin",
    "RelationshipStatusFilter",
    "customer_admin_extension",
]
