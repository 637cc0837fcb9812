# The processors' models now live in the processors app (processors 0001_initial); their tables
# stay where retention 0004 created them. State only: nothing in the database changes.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("processors", "0001_initial"),
        ("retention", "0004_processors"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ProcessorOverview"),
                migrations.DeleteModel(name="ProcessorJob"),
                migrations.DeleteModel(name="ProcessorCheck"),
            ],
            database_operations=[],
        ),
    ]
