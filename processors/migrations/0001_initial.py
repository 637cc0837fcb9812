# The processors' models moved here from the retention app, which created their tables (retention
# 0004_processors). The tables keep their names: this migration changes Django's state only, and
# moves the models' content types (so their permissions, and the Privacy officer's grants of them,
# stay as they are). retention 0005 then drops the models from retention's state.

import django.contrib.postgres.fields
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

MOVED = ["processorcheck", "processoroverview", "processorjob"]


def _move_content_types(apps, *, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label=target, model=model).exists():
            ContentType.objects.filter(app_label=source, model=model).update(app_label=target)


def forwards(apps, schema_editor):
    _move_content_types(apps, source="retention", target="processors")


def backwards(apps, schema_editor):
    _move_content_types(apps, source="processors", target="retention")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("retention", "0004_processors"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ProcessorCheck",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("processor", models.CharField(max_length=32, verbose_name="processor")),
                        (
                            "checked_at",
                            models.DateTimeField(default=django.utils.timezone.now, verbose_name="checked"),
                        ),
                        ("ok", models.BooleanField(verbose_name="matches the policy")),
                        (
                            "drift",
                            models.JSONField(
                                blank=True,
                                default=list,
                                help_text="A list of {setting, expected, actual, fix}.",
                                verbose_name="drift",
                            ),
                        ),
                        (
                            "error",
                            models.TextField(
                                blank=True, help_text="Why the check could not be made.", verbose_name="error"
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "processor check",
                        "verbose_name_plural": "processor checks",
                        "db_table": "retention_processorcheck",
                        "ordering": ["-checked_at", "-pk"],
                        "indexes": [
                            models.Index(
                                fields=["processor", "-checked_at"], name="processorcheck_latest_idx"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="ProcessorOverview",
                    fields=[],
                    options={
                        "verbose_name": "processor",
                        "verbose_name_plural": "processors",
                        "proxy": True,
                        "indexes": [],
                        "constraints": [],
                    },
                    bases=("processors.processorcheck",),
                ),
                migrations.CreateModel(
                    name="ProcessorJob",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("processor", models.CharField(max_length=32, verbose_name="processor")),
                        ("kind", models.CharField(max_length=32, verbose_name="kind")),
                        ("customer_id", models.BigIntegerField(verbose_name="customer id")),
                        (
                            "target_ids",
                            django.contrib.postgres.fields.ArrayField(
                                base_field=models.BigIntegerField(),
                                blank=True,
                                default=list,
                                help_text="What the step deletes, as the processor's ids (tickets, a user).",
                                verbose_name="processor's ids",
                            ),
                        ),
                        (
                            "external_id",
                            models.CharField(blank=True, max_length=100, verbose_name="processor's job id"),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending: done on the next run"),
                                    ("submitted", "Submitted: the processor is working on it"),
                                    ("completed", "Completed"),
                                ],
                                default="pending",
                                max_length=16,
                                verbose_name="status",
                            ),
                        ),
                        ("attempts", models.PositiveIntegerField(default=0, verbose_name="attempts")),
                        ("last_error", models.TextField(blank=True, verbose_name="last error")),
                        (
                            "created_at",
                            models.DateTimeField(default=django.utils.timezone.now, verbose_name="created"),
                        ),
                        (
                            "updated_at",
                            models.DateTimeField(default=django.utils.timezone.now, verbose_name="updated"),
                        ),
                        ("finished_at", models.DateTimeField(blank=True, null=True, verbose_name="finished")),
                        (
                            "run",
                            models.ForeignKey(
                                blank=True,
                                help_text="The purge run that last worked on it.",
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="retention.purgerun",
                                verbose_name="purge run",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "processor job",
                        "verbose_name_plural": "processor jobs",
                        "db_table": "retention_processorjob",
                        "ordering": ["-created_at", "-pk"],
                        "indexes": [
                            models.Index(
                                fields=["customer_id", "processor", "kind", "status"],
                                name="processorjob_customer_idx",
                            ),
                            models.Index(fields=["processor", "-created_at"], name="processorjob_latest_idx"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
