"""Staff groups. Later migrations extend them as apps add models (the Privacy officer gets the
retention and access-request permissions where those are created)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_PERMISSIONS = {
    "Support": [
        "customers.view_customer",
        "customers.change_customer",
        "customers.view_contact",
        "customers.add_contact",
        "customers.change_contact",
        "customers.view_contract",
        "customers.change_contract",
        "customers.view_correspondence",
        "customers.change_correspondence",
    ],
    "Billing": [
        "customers.view_customer",
        "customers.view_contract",
        "customers.view_invoice",
        "customers.add_invoice",
        "customers.change_invoice",
        "customers.delete_invoice",
        "customers.view_invoiceline",
        "customers.add_invoiceline",
        "customers.change_invoiceline",
        "customers.delete_invoiceline",
        "customers.view_payment",
        "customers.add_payment",
        "customers.change_payment",
    ],
    "Privacy officer": [
        "customers.view_customer",
        "customers.view_contact",
        "customers.view_contract",
        "customers.view_invoice",
        "customers.view_invoiceline",
        "customers.view_payment",
        "customers.view_correspondence",
    ],
}


def grant(apps, schema_editor, group_permissions=GROUP_PERMISSIONS):
    # Permissions are normally created after all migrations; create them now so the groups
    # can hold them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, names in group_permissions.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for name in names:
            app_label, codename = name.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
