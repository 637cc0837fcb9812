"""Database triggers that refuse a change outright.

They raise SQLSTATE 23000 (integrity_constraint_violation), which Django surfaces as
`IntegrityError`, so a refused raw-SQL change fails like a violated constraint would.
"""

from __future__ import annotations

import pgtrigger


class Refuse(pgtrigger.Trigger):
    """Refuse the operation (when `condition` holds) with a message naming the row."""

    when = pgtrigger.Before

    def __init__(self, *, message: str, **kwargs: object) -> None:
        self.message = message
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def get_func(self, model: object) -> str:
        row = "NEW" if self.operation == pgtrigger.Insert else "OLD"
        message = self.message.replace("'", "''")
        return f"""
            RAISE EXCEPTION '{message} (table %, id %)', TG_TABLE_NAME, {row}.id
                USING ERRCODE = 'integrity_constraint_violation';
        """
