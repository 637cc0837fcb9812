"""SQL functions and triggers that enforce retention inside PostgreSQL.

The purge decides what to delete; these make sure that nothing held is deleted by anything else,
raw SQL included:
- `portal_today()`: today in Europe/Oslo, the day the retention rules count in.
- `accounting_deletable_on(date)`: the SQL twin of `windows.accounting_deletable_on` for one
  voucher date, built from the configured periods.
- `audit_event_kept_from()`: audit events created at or after this moment are inside their window.
- Triggers refusing to delete an issued invoice or a payment inside the accounting period, any
  row of a customer under an active legal hold, and the active hold itself.

`install_functions()` runs after every `migrate` (CREATE OR REPLACE), so the functions always carry
the periods in settings; the migrations call it too, so triggers can be created on a fresh database.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from retention.windows import RetentionPeriods


def functions_sql(periods: RetentionPeriods) -> str:
    end_month, end_day = periods.fiscal_year_end
    return f"""
CREATE OR REPLACE FUNCTION portal_today() RETURNS date
    LANGUAGE sql STABLE AS $$ SELECT (now() AT TIME ZONE 'Europe/Oslo')::date $$;

CREATE OR REPLACE FUNCTION accounting_deletable_on(voucher_date date) RETURNS date
    LANGUAGE sql IMMUTABLE AS $$
    SELECT (CASE
        WHEN voucher_date <= make_date(extract(year FROM voucher_date)::int, {end_month}, {end_day})
        THEN make_date(extract(year FROM voucher_date)::int, {end_month}, {end_day})
        ELSE make_date(extract(year FROM voucher_date)::int + 1, {end_month}, {end_day})
    END + interval '{int(periods.accounting_years)} years')::date + 1
$$;

CREATE OR REPLACE FUNCTION audit_event_kept_from() RETURNS timestamptz
    LANGUAGE sql STABLE AS $$ SELECT now() - interval '{int(periods.audit_months)} months' $$;
"""


def install_functions(schema_editor: Any = None, periods: RetentionPeriods | None = None) -> None:
    sql = functions_sql(periods or RetentionPeriods.from_settings())
    if schema_editor is not None:
        schema_editor.execute(sql, params=None)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql)


HOLD_MESSAGE = "row of customer % is under a legal hold and cannot be deleted"

# Statement-level triggers read the deleted rows as a transition table: one query per DELETE
# statement, however many rows it removes, so a purge of a million rows pays for it once.
LEGAL_HOLD_TABLES = {
    "customers_customer": "id",
    "customers_contact": "customer_id",
    "customers_contract": "customer_id",
    "customers_invoice": "customer_id",
    "customers_correspondence": "customer_id",
}


def legal_hold_triggers_sql() -> str:
    statements = [
        f"""
CREATE OR REPLACE FUNCTION retention_refuse_held_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE held bigint;
BEGIN
    SELECT d.{column} INTO held FROM deleted_rows d
      JOIN retention_legalhold h ON h.customer_id = d.{column}
     WHERE h.released_at IS NULL AND (h.ends_on IS NULL OR h.ends_on >= portal_today())
     LIMIT 1;
    IF held IS NOT NULL THEN
        RAISE EXCEPTION '{HOLD_MESSAGE} ({table})', held USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS retention_legal_hold ON {table};
CREATE TRIGGER retention_legal_hold AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS deleted_rows FOR EACH STATEMENT
    EXECUTE FUNCTION retention_refuse_held_{table}();
"""
        for table, column in LEGAL_HOLD_TABLES.items()
    ]
    return "\n".join([*statements, ACTIVE_HOLD_TRIGGER_SQL])


# The triggers above read the holds table after the statement, but deleting a customer deletes
# its holds first (ON DELETE CASCADE runs before statement-level AFTER triggers): without this,
# `DELETE FROM customers_customer` removed a customer under an active hold, hold and all. An
# active hold cannot be deleted by any path, so the cascade, and with it the statement, fails.
ACTIVE_HOLD_TRIGGER_SQL = f"""
CREATE OR REPLACE FUNCTION retention_refuse_active_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{HOLD_MESSAGE} (retention_legalhold: release the hold first)', OLD.customer_id
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
DROP TRIGGER IF EXISTS retention_legal_hold ON retention_legalhold;
CREATE TRIGGER retention_legal_hold BEFORE DELETE ON retention_legalhold FOR EACH ROW
    WHEN (OLD.released_at IS NULL AND (OLD.ends_on IS NULL OR OLD.ends_on >= portal_today()))
    EXECUTE FUNCTION retention_refuse_active_hold();
"""


ACCOUNTING_TRIGGERS_SQL = """
CREATE OR REPLACE FUNCTION retention_refuse_accounting_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% % is an accounting record kept until % (bokføringsloven § 13)',
        TG_TABLE_NAME, OLD.id, TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END $$;

DROP TRIGGER IF EXISTS retention_accounting_hold ON customers_invoice;
CREATE TRIGGER retention_accounting_hold BEFORE DELETE ON customers_invoice FOR EACH ROW
    WHEN (OLD.issued_on IS NOT NULL AND accounting_deletable_on(OLD.issued_on) > portal_today())
    EXECUTE FUNCTION retention_refuse_accounting_record('the end of the accounting period');

DROP TRIGGER IF EXISTS retention_accounting_hold ON customers_payment;
CREATE TRIGGER retention_accounting_hold BEFORE DELETE ON customers_payment FOR EACH ROW
    WHEN (accounting_deletable_on(OLD.paid_on) > portal_today())
    EXECUTE FUNCTION retention_refuse_accounting_record('the end of the accounting period');
"""

DROP_TRIGGERS_SQL = "\n".join(
    [
        f"DROP TRIGGER IF EXISTS retention_legal_hold ON {table};"
        for table in [*LEGAL_HOLD_TABLES, "retention_legalhold"]
    ]
    + [
        "DROP TRIGGER IF EXISTS retention_accounting_hold ON customers_invoice;",
        "DROP TRIGGER IF EXISTS retention_accounting_hold ON customers_payment;",
    ]
)
