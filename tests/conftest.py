"""Personas and real services for the whole suite.

Alice is a customer; Bob is another customer who must never see her data; the staff users each
belong to one staff group. Tests run against real PostgreSQL and Redis (see `portal.launch`).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import translation

from customers.models import Customer
from tests.factories import ContractFactory, CustomerFactory, PersonCustomerFactory, UserFactory

pytest_plugins = ["tests.fixtures_s3"]


@pytest.fixture(autouse=True)
def _english_outside_requests() -> Any:
    # Services and validators speak the active language; tests that call them directly read
    # English. Requests still choose their language through LocaleMiddleware (Norwegian default).
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _isolated_cache(settings: Any, request: pytest.FixtureRequest) -> None:
    # Each test sees its own keys in the shared Redis.
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{request.node.nodeid}"}}


@pytest.fixture
def alice(db: None) -> Customer:
    customer = PersonCustomerFactory.create(
        name="Alice Hansen",
        email="alice@example.no",
        phone="+47 91234567",
        user=UserFactory.create(username="alice"),
    )
    ContractFactory.create(customer=customer)
    return customer


@pytest.fixture
def bob(db: None) -> Customer:
    customer = CustomerFactory.create(
        name="Bob Berg AS", email="bob@berg.example.no", user=UserFactory.create(username="bob")
    )
    ContractFactory.create(customer=customer)
    return customer


def _staff_user(username: str, group_name: str) -> Any:
    user = UserFactory.create(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def support_user(db: None) -> Any:
    return _staff_user("siri-support", "Support")


@pytest.fixture
def billing_user(db: None) -> Any:
    return _staff_user("bjorn-billing", "Billing")


@pytest.fixture
def privacy_officer(db: None) -> Any:
    return _staff_user("pernille-privacy", "Privacy officer")


@pytest.fixture
def superuser(db: None) -> Any:
    return UserFactory.create(username="root-admin", is_staff=True, is_superuser=True)
