"""The Privacy officer, who may see everything the portal shows a customer, is the group that may
let someone sign in as one: give a contact portal access, or change the address a customer or a
contact signs in with (customers.grant_portal_access). It still changes nothing else: on the
customer and contact screens only those fields open to it (portal/admin_access.py). Support, which
may not see invoices, may do neither (it still corrects the other details)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Privacy officer"
PERMISSIONS = ["customers.grant_portal_access"]


def _permissions(apps):
    # Permissions are normally created after all migrations; create them now (as 0001 does).
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
        ("portal", "0001_staff_groups"),
        ("customers", "0006_grant_portal_access"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
