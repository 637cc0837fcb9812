"""The Privacy officer follows the purges and the deletion log, places and releases legal holds,
and reads the audit trail. Nobody gets add, change or delete on purge runs or the deletion log:
they are proof of deletion (the database refuses changing them anyway)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Privacy officer"
PERMISSIONS = [
    "retention.view_purgerun",
    "retention.view_deletionlog",
    "retention.view_legalhold",
    "retention.add_legalhold",
    "retention.change_legalhold",
    "audit.view_auditevent",
]


def _permissions(apps):
    # Permissions are normally created after all migrations; create them now so the group can
    # hold them on a fresh database (as portal/migrations/0001_staff_groups.py does).
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    for name in PERMISSIONS:
        app_label, codename = name.split(".")
        yield Permission.objects.get(content_type__app_label=app_label, codename=codename)


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(*_permissions(apps))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    group = Group.objects.filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(*_permissions(apps))


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0002_hold_triggers"),
        ("audit", "0001_initial"),
        ("portal", "0001_staff_groups"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
