"""The portal's URLs plus the benchmark's anchors (benchmarks/web.py; never in production):

- /bench/template/: a plain Django template view (the portal's base layout), no query;
- /bench/queries/: a plain Django view with 3 indexed queries (primary keys and a foreign-key
  index), rendered through the same template.

Both are anonymous and pass through the portal's whole middleware stack, as its own pages do."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import include, path

from customers.models import Contract, Customer

# The portal's own layout (base.html: the language switch with its CSRF token, the stylesheet),
# so an anchor costs what plain Django costs for a page that looks like the portal's.
ANCHOR_TEMPLATE = engines["django"].from_string(
    """{% extends "base.html" %}{% block title %}{{ title }}{% endblock %}{% block content %}
<h1>{{ title }}</h1>
<ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>
{% endblock %}"""
)


def plain_template(request: HttpRequest) -> HttpResponse:
    return HttpResponse(ANCHOR_TEMPLATE.render({"title": "Anchor", "items": range(10)}, request))


def three_queries(request: HttpRequest) -> HttpResponse:
    customer_id = int(request.GET.get("customer", "1"))
    customer = Customer.objects.filter(pk=customer_id).first()  # customers_customer_pkey
    user = get_user_model().objects.filter(pk=(customer.user_id if customer else None) or 0).first()  # pkey
    contracts = list(Contract.objects.filter(customer_id=customer_id)[:5])  # contract_customer_end_idx
    items = [str(customer), str(user), *(str(contract) for contract in contracts)]
    return HttpResponse(ANCHOR_TEMPLATE.render({"title": "Anchor", "items": items}, request))


urlpatterns = [
    path("bench/template/", plain_template),
    path("bench/queries/", three_queries),
    path("", include("portal.urls")),
]
