"""The data map is the single source of truth, and no personal data escapes it."""

from django.apps import apps
from django.core.management import call_command
from django.db import models
from django.test.utils import isolate_apps

from customers.models import Customer
from retention.checks import path_to_customer, unmapped_personal_data
from retention.data_map import PROCESSORS, categories, category, tables


def test_every_category_the_policy_names_is_in_the_map() -> None:
    assert {c.key for c in categories()} >= {
        "customer_account",
        "contracts",
        "invoices",
        "correspondence",
        "server_logs",
        "web_analytics",
        "sessions_and_audit",
    }


def test_every_category_has_purpose_basis_processor_and_rule() -> None:
    for item in categories():
        assert str(item.purpose) and str(item.legal_basis) and str(item.retention) and item.rule, item.key
        assert item.processors and all(key in PROCESSORS for key in item.processors), item.key


def test_every_table_resolves_to_a_model_and_its_fields() -> None:
    for _category, table in tables():
        model = apps.get_model(table.model)
        names = {field.name for field in model._meta.get_fields()}
        assert set(table.fields) <= names, (table.model, set(table.fields) - names)


def test_every_model_with_a_path_to_customer_is_mapped() -> None:
    assert unmapped_personal_data(apps.get_models()) == []
    call_command("check", fail_level="ERROR")


def test_a_new_table_holding_personal_data_fails_the_check_naming_it() -> None:
    with isolate_apps("customers"):

        class LoyaltyPoints(models.Model):
            customer = models.ForeignKey(Customer, on_delete=models.DB_CASCADE)
            points = models.IntegerField()

            class Meta:
                app_label = "customers"

        class Reward(models.Model):
            loyalty = models.ForeignKey(LoyaltyPoints, on_delete=models.DB_CASCADE)

            class Meta:
                app_label = "customers"

        class Unrelated(models.Model):
            name = models.CharField(max_length=10)

            class Meta:
                app_label = "customers"

        problems = unmapped_personal_data([LoyaltyPoints, Reward, Unrelated])
    assert [problem.id for problem in problems] == ["retention.E001", "retention.E001"]
    assert "customers.LoyaltyPoints" in problems[0].msg
    assert "customers.Reward" in problems[1].msg and "loyalty.customer" in problems[1].msg


def test_paths_to_customer() -> None:
    assert path_to_customer(apps.get_model("customers.InvoiceLine")) == ["invoice", "customer"]
    assert path_to_customer(apps.get_model("customers.InvoiceSequence")) is None


def test_unknown_category_is_named_in_the_error() -> None:
    try:
        category("nonsense")
    except KeyError as error:
        assert "customer_account" in str(error)
    else:
        raise AssertionError("category('nonsense') should fail")
