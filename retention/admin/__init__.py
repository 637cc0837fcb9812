"""Staff screens for retention, one screen a module: the customer screen's retention columns
(`customers`), legal holds, purge runs with the purge preview, and the deletion log.

Invariants:
- Writes go through `retention.services` (a hold is placed and released there, with its audit
  event); these modules only translate requests into those calls.
- Purge runs and the deletion log are read-only here, whatever the user's permissions (the
  database refuses changing them anyway).
- The customer changelist keeps a constant number of queries: the deletion schedule is computed
  in Python from facts loaded as SQL annotations (`customers_with_deletion_facts`).
"""

from retention.admin.common import CategoryFilter, ReadOnlyAdmin
from retention.admin.customers import DeletionDueFilter, RetentionColumns
from retention.admin.deletion_log import DeletionLogAdmin
from retention.admin.legal_holds import LegalHoldAdmin, LegalHoldForm, LegalHoldStatusFilter
from retention.admin.purge_runs import PurgePreviewForm, PurgeRunAdmin

__all__ = [
    "CategoryFilter",
    "DeletionDueFilter",
    "DeletionLogAdmin",
    "LegalHoldAdmin",
    "LegalHoldForm",
    "LegalHoldStatusFilter",
    "PurgePreviewForm",
    "PurgeRunAdmin",
    "ReadOnlyAdmin",
    "RetentionColumns",
]
