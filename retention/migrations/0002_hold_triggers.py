"""Triggers that refuse deleting held rows, on the customers tables (see retention/db.py)."""

from django.db import migrations

from retention.db import ACCOUNTING_TRIGGERS_SQL, DROP_TRIGGERS_SQL, legal_hold_triggers_sql


def install(apps, schema_editor):
    from retention.db import install_functions

    install_functions(schema_editor)
    schema_editor.execute(ACCOUNTING_TRIGGERS_SQL, params=None)
    schema_editor.execute(legal_hold_triggers_sql(), params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0001_initial"),
        ("customers", "0001_initial"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(
            install, lambda apps, schema_editor: schema_editor.execute(DROP_TRIGGERS_SQL, params=None)
        )
    ]
