"""System check: every model that holds personal data belongs to a data-map category.

A model holds personal data about a customer when a chain of foreign keys leads from it to
`customers.Customer`. Such a model outside the data map would escape both the export and the
purge, so `manage.py check` (and therefore every test run and deploy) fails, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.core import checks
from django.db import models

CUSTOMER_MODEL = "customers.Customer"


def path_to_customer(model: type[models.Model], *, seen: frozenset[str] = frozenset()) -> list[str] | None:
    """The chain of foreign-key names from `model` to Customer, or None when there is none."""
    return path_to(model, CUSTOMER_MODEL, seen=seen)


def path_to(
    model: type[models.Model], target_label: str, *, seen: frozenset[str] = frozenset()
) -> list[str] | None:
    """The chain of foreign-key names from `model` to the model `target_label` ("auth.User"), or
    None when there is none."""
    label = model._meta.label
    if label == target_label:
        return []
    for field in model._meta.concrete_fields:
        target = getattr(field, "related_model", None)
        if not field.is_relation or target is None or target is model:
            continue
        if target._meta.label in seen:
            continue
        rest = path_to(target, target_label, seen=seen | {label})
        if rest is not None:
            return [field.name, *rest]
    return None


@checks.register(checks.Tags.models)
def check_personal_data_is_mapped(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return unmapped_personal_data(apps.get_models())


def unmapped_personal_data(candidates: Iterable[type[models.Model]]) -> list[checks.CheckMessage]:
    from retention.data_map import tables

    mapped = {table.model for _category, table in tables()}
    problems: list[checks.CheckMessage] = []
    for model in candidates:
        label = model._meta.label
        if label in mapped:
            continue
        path = path_to_customer(model)
        if path is None:
            continue
        problems.append(
            checks.Error(
                f"{label} holds personal data (it reaches Customer through {'.'.join(path) or 'itself'}) "
                "but is in no data-map category, so it would escape export and deletion.",
                hint="Add a Table for it to a Category in retention/data_map.py.",
                obj=model,
                id="retention.E001",
            )
        )
    return problems
