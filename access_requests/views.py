"""The customer's own pages: what is stored about them, their access requests, the download.

Every view loads customer data only through `access_requests.selectors` (another customer's id is
a 404), writes only through `access_requests.services`, and sends `Cache-Control: no-store`
(`never_cache`): these pages hold personal data and must not stay in a shared cache or a back
button's history.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe

from access_requests import corrections, erasure, selectors, services
from access_requests.models import AccessRequest
from access_requests.receipts import receipt_summary
from customers.selectors import customer_for_user


@never_cache
@login_required
@require_safe
def my_data(request: HttpRequest) -> HttpResponse:
    customer = customer_for_user(request.user)
    access_requests = list(selectors.access_requests_for_customer(customer))
    page = selectors.my_data_page(customer)
    return render(
        request,
        "access_requests/my_data.html",
        {
            "customer": customer,
            "summary": page.summary,
            "access_requests": access_requests,
            "open_request": next((item for item in access_requests if item.is_open), None),
            "erasure_refusal": erasure.erasure_refusal(
                customer, relationship_status=page.relationship_status
            ),
            "open_erasure": page.open_erasure,
        },
    )


@never_cache
@login_required
@require_POST
def request_create(request: HttpRequest) -> HttpResponse:
    customer = customer_for_user(request.user)
    try:
        access_request = services.access_request_create(customer=customer, acting_user=request.user)
    except services.AccessRequestRefused as refused:
        for message in refused.messages:
            messages.error(request, message)
        return redirect("access_requests:my_data")
    return redirect(access_request)


@never_cache
@login_required
@require_safe
def request_detail(request: HttpRequest, request_id: Any) -> HttpResponse:
    customer = customer_for_user(request.user)
    access_request = selectors.access_request_get_for_customer(customer=customer, request_id=request_id)
    return render(request, "access_requests/detail.html", _detail_context(access_request))


@never_cache
@login_required
@require_safe
def request_status(request: HttpRequest, request_id: Any) -> JsonResponse:
    """What the detail page polls for live progress."""
    customer = customer_for_user(request.user)
    access_request = selectors.access_request_get_for_customer(customer=customer, request_id=request_id)
    return JsonResponse(status_payload(access_request))


@never_cache
@login_required
@require_GET  # not HEAD: every answer hands the file over and is recorded
def request_download(request: HttpRequest, request_id: Any) -> HttpResponseBase:
    customer = customer_for_user(request.user)
    access_request = selectors.access_request_get_for_customer(customer=customer, request_id=request_id)
    try:
        download = services.export_download(access_request=access_request, user=request.user)
    except services.ExportUnavailable as unavailable:
        if unavailable.code == "expired":
            return render(
                request, "access_requests/expired.html", _detail_context(access_request), status=410
            )
        messages.info(request, " ".join(unavailable.messages))
        return redirect(access_request)
    if download.url is not None:
        return redirect(download.url)
    assert download.file is not None
    return FileResponse(
        download.file, as_attachment=True, filename=download.filename, content_type="application/zip"
    )


def _detail_context(access_request: AccessRequest) -> dict[str, Any]:
    return {
        "access_request": access_request,
        "downloadable": selectors.export_is_downloadable(access_request),
        "expired": selectors.export_has_expired(access_request),
        "status_url": reverse("access_requests:status", kwargs={"request_id": access_request.pk}),
    }


def status_payload(access_request: AccessRequest) -> dict[str, Any]:
    def day(value: Any) -> str | None:
        return date_format(timezone.localdate(value), "SHORT_DATE_FORMAT") if value else None

    downloadable = selectors.export_is_downloadable(access_request)
    return {
        "id": str(access_request.pk),
        "status": access_request.status,
        "status_display": str(access_request.get_status_display()),
        "progress": access_request.progress,
        "is_open": access_request.is_open,
        "due_on": access_request.due_on.isoformat(),
        "downloadable": downloadable,
        "download_url": (
            reverse("access_requests:download", kwargs={"request_id": access_request.pk})
            if downloadable
            else None
        ),
        "expires_on": day(access_request.expires_at),
    }


# --- Erasure on request (access_requests/erasure.py) ----------------------------------------------


@never_cache
@login_required
@require_POST
def erasure_start(request: HttpRequest) -> HttpResponse:
    customer = customer_for_user(request.user)
    try:
        erasure_request = erasure.erasure_request_start(customer=customer, acting_user=request.user)
    except erasure.ErasureRefused as refused:
        messages.error(request, refused.message)
        return redirect(reverse("access_requests:my_data") + "#erasure-heading")
    return redirect("access_requests:erasure_confirm", request_id=erasure_request.pk)


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def erasure_confirm(request: HttpRequest, request_id: Any) -> HttpResponse:
    """She enters the code we e-mailed her; then the page that follows the request takes over."""
    customer = customer_for_user(request.user)
    erasure_request = selectors.erasure_request_get_for_customer(customer=customer, request_id=request_id)
    error = ""
    status = 200
    if request.method == "POST":
        try:
            confirmed = erasure.erasure_confirm(
                erasure_request=erasure_request, code=request.POST.get("code", ""), acting_user=request.user
            )
        except erasure.ErasureRefused as refused:
            error, status = refused.message, 400
        else:
            return redirect("access_requests:erasure_receipt", token=confirmed.token)
    return render(
        request,
        "access_requests/erasure_confirm.html",
        {"erasure_request": erasure_request, "error": error, "customer": customer},
        status=status,
    )


@never_cache
@require_safe
def erasure_receipt(request: HttpRequest, token: str) -> HttpResponse:
    """The request and, once done, its receipt, by the link alone: her sign-in goes with her data.
    The link is unguessable (256 bits); an unknown one is a 404 like any other."""
    erasure_request = selectors.erasure_request_get_by_token(token=token)
    response = render(
        request,
        "access_requests/erasure_receipt.html",
        {
            "erasure_request": erasure_request,
            "summary": receipt_summary(erasure_request.receipt) if erasure_request.receipt else None,
        },
    )
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response


# --- Correction on request (access_requests/corrections.py) ----------------------------------------


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def details(request: HttpRequest) -> HttpResponse:
    """She corrects her own details and her contacts'; invoices already issued keep theirs."""
    customer = customer_for_user(request.user)
    data = request.POST if request.method == "POST" else None
    form = corrections.CustomerDetailsForm(data, instance=customer, prefix="customer")
    contacts = corrections.contact_formset(customer, data)
    status = 200
    if request.method == "POST":
        if form.is_valid() and contacts.is_valid():
            changed = corrections.details_correct(
                customer=customer, details=form, contacts=contacts.forms, acting_user=request.user
            )
            if changed:
                messages.success(request, _("Your details are corrected."))
            else:
                messages.info(request, _("Nothing was changed."))
            return redirect("access_requests:details")
        status = 400
    return render(
        request,
        "access_requests/details.html",
        {"customer": customer, "form": form, "contacts": contacts},
        status=status,
    )
