"""What the API shows of an access request, and what it accepts. Read-only shapes and inputs:
every write goes through `access_requests.services`."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from access_requests import selectors
from access_requests.models import AccessRequest

CUSTOMER_FIELDS = [
    "id",
    "status",
    "status_display",
    "progress",
    "channel",
    "received_at",
    "due_on",
    "extended_at",
    "extension_reason",
    "rejection_reason",
    "ready_at",
    "expires_at",
    "downloaded_at",
    "download_count",
    "downloadable",
    "page_url",
]


class AccessRequestSerializer(serializers.ModelSerializer[AccessRequest]):
    """An access request as its customer sees it."""

    status_display = serializers.CharField(source="get_status_display", read_only=True)
    downloadable = serializers.SerializerMethodField(
        help_text=_("A file is ready and has not expired: ask for a download link.")
    )
    page_url = serializers.SerializerMethodField(help_text=_("The request's page in the portal."))

    class Meta:
        model = AccessRequest
        fields = CUSTOMER_FIELDS
        read_only_fields = CUSTOMER_FIELDS

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_downloadable(self, access_request: AccessRequest) -> bool:
        return selectors.export_is_downloadable(access_request)

    @extend_schema_field(OpenApiTypes.URI)
    def get_page_url(self, access_request: AccessRequest) -> str:
        url = access_request.get_absolute_url()
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class StaffAccessRequestSerializer(AccessRequestSerializer):
    """An access request as staff see it: ids, never the customer's name or address."""

    class Meta:
        model = AccessRequest
        fields = [
            *CUSTOMER_FIELDS,
            "customer",
            "identity_verification",
            "created_by",
            "build_attempts",
            "failure_reason",
            "export_size",
        ]
        read_only_fields = fields


class DownloadLinkSerializer(serializers.Serializer[dict[str, Any]]):
    url = serializers.URLField(
        help_text=_(
            "Where to fetch the ZIP file. On S3 a presigned URL; otherwise the portal's download "
            "page, which needs the same session."
        )
    )
    expires_in = serializers.IntegerField(
        allow_null=True,
        help_text=_("Seconds the URL stays valid (at most 300); null when it needs the session."),
    )
    filename = serializers.CharField()


class ReasonSerializer(serializers.Serializer[dict[str, Any]]):
    reason = serializers.CharField(
        max_length=2000, help_text=_("Why; the customer is told."), trim_whitespace=True
    )


class StaffFilterSerializer(serializers.Serializer[dict[str, Any]]):
    status = serializers.ChoiceField(choices=AccessRequest.Status.choices, required=False)
    customer = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    overdue = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text=_("Open requests past their due date.")
    )


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)


def download_page_url(request: Any, access_request: AccessRequest) -> str:
    path = reverse("access_requests:download", kwargs={"request_id": access_request.pk})
    return str(request.build_absolute_uri(path))
