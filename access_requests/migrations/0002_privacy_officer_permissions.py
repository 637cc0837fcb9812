"""The Privacy officer handles access requests in the admin: sees them all, registers those that
arrive by e-mail, phone or letter, and extends, rejects or retries them (change). Nobody gets delete:
a request is part of the customer's record and goes with it."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Privacy officer"
PERMISSIONS = [
    "access_requests.view_accessrequest",
    "access_requests.add_accessrequest",
    "access_requests.change_accessrequest",
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
        ("access_requests", "0001_initial"),
        ("portal", "0001_staff_groups"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
