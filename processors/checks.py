"""System check: every connector names data-map categories that exist.

The export puts a connector's tables under the category it names (`export_categories`), and the
privacy page and the Processors page list the categories it holds (`categories`). A name the data
map does not know would drop the table from the customer's copy without a word, so
`manage.py check` (and every test run and deploy) fails, naming the connector.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core import checks

from processors.base import Connector


@checks.register()
def check_connector_categories(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from processors.registry import CONNECTOR_CLASSES

    return unknown_connector_categories(CONNECTOR_CLASSES)


def unknown_connector_categories(connector_classes: Iterable[type[Connector]]) -> list[checks.CheckMessage]:
    from retention import data_map

    known = {category.key for category in data_map.categories()}
    problems: list[checks.CheckMessage] = []
    for connector_class in connector_classes:
        named = [*connector_class.categories, *connector_class.export_categories.values()]
        for key in dict.fromkeys(named):
            if key not in known:
                problems.append(
                    checks.Error(
                        f"The {connector_class.__name__} connector names the category {key!r}, which "
                        "is not in the data map, so its data would escape the export.",
                        hint=f"Use one of: {', '.join(sorted(known))}.",
                        obj=connector_class,
                        id="processors.E001",
                    )
                )
    return problems
