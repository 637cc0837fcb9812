"""The portal's own pages: the front page, the public privacy policy, and the customer's optional
Google Analytics id.

The analytics id page loads the customer only through `customers.selectors.customer_for_user`
(404 for anyone who is not a customer) and writes only through `processors.services`.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from customers.selectors import customer_for_user
from portal.privacy import RENDERED_POLICY_SECONDS, privacy_policy, rendered_policy_key
from processors import selectors as processor_selectors
from processors import services as processor_services
from retention.data_map import PROCESSORS


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


@require_safe
def privacy(request: HttpRequest) -> HttpResponse:
    """The privacy policy, rendered from the data map: it cannot say another period than the one
    the purges enforce. The policy itself is rendered once per language and kept a few minutes
    (`retention.privacy.RENDERED_POLICY_SECONDS`); only the layout around it is rendered per request."""
    key = rendered_policy_key(get_language() or settings.LANGUAGE_CODE)
    policy = cache.get(key)
    if policy is None:
        policy = render_to_string(
            "portal/_privacy_policy.html",
            {
                "sections": privacy_policy(),
                "processors": [processor for processor in PROCESSORS.values() if processor.privacy_url],
            },
        )
        cache.set(key, policy, RENDERED_POLICY_SECONDS)
    return render(request, "portal/privacy.html", {"policy": SafeString(policy)})


class AnalyticsIdentifierForm(forms.Form):
    client_id = forms.CharField(
        label=_("Your Google Analytics id"),
        max_length=100,
        help_text=_("For example 1234567890.1712345678, or the whole value of the _ga cookie."),
    )

    def clean_client_id(self) -> str:
        try:
            return processor_services.normalize_client_id(self.cleaned_data["client_id"])
        except ValidationError as error:
            raise forms.ValidationError(error.messages) from error


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def analytics_identifier(request: HttpRequest) -> HttpResponse:
    """/my-data/analytics/: the customer may give us their Google Analytics id (optional), so that
    Google deletes its analytics data about them when we delete theirs."""
    customer = customer_for_user(request.user)
    form = AnalyticsIdentifierForm()
    if request.method == "POST":
        if "remove" in request.POST:
            try:
                identifier_id = int(request.POST["remove"])
            except ValueError:
                identifier_id = 0
            if processor_services.analytics_identifier_remove(customer=customer, identifier_id=identifier_id):
                messages.success(request, gettext("We have forgotten that analytics id."))
            return redirect("analytics_identifier")
        form = AnalyticsIdentifierForm(request.POST)
        if form.is_valid():
            try:
                processor_services.analytics_identifier_add(
                    customer=customer, client_id=form.cleaned_data["client_id"]
                )
            except ValidationError as error:
                form.add_error("client_id", error)
            else:
                messages.success(request, gettext("Thank you. We have saved your analytics id."))
                return redirect("analytics_identifier")
    return render(
        request,
        "portal/analytics_identifier.html",
        {
            "customer": customer,
            "form": form,
            "identifiers": processor_selectors.analytics_identifiers_for(customer.pk),
        },
    )
