"""Every connector files its data under categories the data map has; one that does not stops
`manage.py check`, so a processor's table cannot drop out of the customer's copy unnoticed."""

from processors.checks import unknown_connector_categories
from processors.registry import CONNECTOR_CLASSES
from processors.zendesk import ZendeskConnector


def test_every_connector_names_categories_of_the_data_map() -> None:
    assert unknown_connector_categories(CONNECTOR_CLASSES) == []


def test_a_connector_exporting_into_an_unknown_category_fails_the_check() -> None:
    class MisfiledConnector(ZendeskConnector):
        export_categories = {"zendesk.Ticket": "no_such_category"}

    (error,) = unknown_connector_categories([MisfiledConnector])
    assert error.id == "processors.E001"
    assert "no_such_category" in error.msg
