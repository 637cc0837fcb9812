"""After restoring a database backup: delete again every customer an erasure on request deleted
after the backup was taken (access_requests.erasure, the ledger in the file storage).

    make manage ARGS="reapply_erasures"

Exit status 0 when every customer found was erased again (or none was found), 3 when one is kept
(a legal hold placed since, or a processor that did not answer: run it again).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access_requests.erasure import erasures_reapply


class Command(BaseCommand):
    help = "Delete again the customers erased on request whom a restored backup brought back."

    def handle(self, *args: Any, **options: Any) -> None:
        outcomes = erasures_reapply()
        for customer_id, erased in outcomes:
            self.stdout.write(
                f"customer {customer_id}: {'erased again' if erased else 'KEPT, run again later'}"
            )
        kept = [customer_id for customer_id, erased in outcomes if not erased]
        again = len(outcomes) - len(kept)
        self.stdout.write(f"{len(outcomes)} erased customers found in the database; {again} erased again")
        if kept:
            raise CommandError(f"{len(kept)} not erased yet", returncode=3)
