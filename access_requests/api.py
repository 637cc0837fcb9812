"""The REST API (/api/v1/): the signed-in customer's access requests, and staff actions on all.

Thin: objects are loaded only through the access-checked selectors (another customer's id is a
404, like one that does not exist), changes go through the services, and a refusal from a service
(`AccessRequestRefused`) becomes a 4xx with its reason, never a 500.

Authentication is the portal's session. An anonymous call answers 401 (SessionAuthentication alone
answers 403, which tells a client nothing about signing in).
"""

from __future__ import annotations

from typing import Any

from django.utils.cache import add_never_cache_headers
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from access_requests import selectors, services
from access_requests.models import AccessRequest
from access_requests.serializers import (
    AccessRequestSerializer,
    DownloadLinkSerializer,
    ErrorSerializer,
    ReasonSerializer,
    StaffAccessRequestSerializer,
    StaffFilterSerializer,
    download_page_url,
)
from access_requests.storage import PRESIGNED_URL_SECONDS, is_signed_url_storage
from customers.selectors import customer_for_user


class PortalSessionAuthentication(SessionAuthentication):
    """The portal's session, answering 401 with a challenge when nobody is signed in."""

    def authenticate_header(self, request: Request) -> str:
        return 'Session realm="portal", sign-in="/accounts/login/"'


class PortalSessionScheme(OpenApiAuthenticationExtension):
    target_class = PortalSessionAuthentication
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        from django.conf import settings

        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


def _refusal(refused: services.AccessRequestRefused, *, default: int = status.HTTP_409_CONFLICT) -> Response:
    statuses = {
        "expired": status.HTTP_410_GONE,
        "no_reason": status.HTTP_400_BAD_REQUEST,
        "identity_not_verified": status.HTTP_400_BAD_REQUEST,
    }
    return Response(
        {"detail": " ".join(refused.messages), "code": refused.code or "refused"},
        status=statuses.get(refused.code or "", default),
    )


REQUEST_ID = OpenApiParameter(
    "request_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The access request's id."
)
ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Not signed in."),
    404: OpenApiResponse(ErrorSerializer, description="No such request of yours."),
}


class NeverCachedViewSet(viewsets.GenericViewSet[AccessRequest]):
    """Answers hold personal data: no shared cache or browser history may keep them. OPTIONS
    answers 405 rather than describing the endpoint (the schema at /api/schema/ does that)."""

    metadata_class = None

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(response)
        return response


@extend_schema_view(
    list=extend_schema(
        summary="Your access requests, newest first",
        responses={200: AccessRequestSerializer(many=True), 401: ERRORS[401]},
    ),
    retrieve=extend_schema(
        summary="One of your access requests",
        parameters=[REQUEST_ID],
        responses={200: AccessRequestSerializer, **ERRORS},
    ),
)
class CustomerAccessRequestViewSet(NeverCachedViewSet):
    """Access requests (GDPR art. 15) of the signed-in customer."""

    authentication_classes = [PortalSessionAuthentication]
    # Signed in; who is not a customer gets 404 from the selector, as for another's request.
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = AccessRequestSerializer
    lookup_url_kwarg = "request_id"
    lookup_value_regex = "[^/]+"
    pagination_class = None

    def get_queryset(self) -> Any:
        return selectors.access_requests_for_customer(customer_for_user(self.request.user))

    def get_object(self) -> AccessRequest:
        customer = customer_for_user(self.request.user)
        return selectors.access_request_get_for_customer(
            customer=customer, request_id=self.kwargs[self.lookup_url_kwarg]
        )

    def list(self, request: Request) -> Response:
        serializer = self.get_serializer(self.get_queryset(), many=True)
        return Response(serializer.data)

    def retrieve(self, request: Request, request_id: str) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Ask for a copy of your data",
        description="One open request at a time: while one is received, being prepared or ready, "
        "a new one is refused with 409 and the reason.",
        request=None,
        responses={
            201: AccessRequestSerializer,
            401: ERRORS[401],
            409: OpenApiResponse(ErrorSerializer, description="You already have an open request."),
        },
    )
    def create(self, request: Request) -> Response:
        customer = customer_for_user(request.user)
        try:
            access_request = services.access_request_create(customer=customer, acting_user=request.user)
        except services.AccessRequestRefused as refused:
            return _refusal(refused)
        return Response(self.get_serializer(access_request).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="A link to download the copy",
        description=f"On S3 a presigned URL valid for at most {PRESIGNED_URL_SECONDS} seconds, which "
        "saves the ZIP as an attachment and is never cached; the download is recorded. Otherwise "
        "the portal's download page, which needs the same session.",
        request=None,
        parameters=[REQUEST_ID],
        responses={
            200: DownloadLinkSerializer,
            **ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="Not ready yet."),
            410: OpenApiResponse(ErrorSerializer, description="Expired: ask for a new copy."),
        },
    )
    @action(detail=True, methods=["post"], url_path="download-link", url_name="download-link")
    def download_link(self, request: Request, request_id: str) -> Response:
        access_request = self.get_object()
        try:
            if is_signed_url_storage():
                download = services.export_download(access_request=access_request, user=request.user)
                payload = {"url": download.url, "expires_in": PRESIGNED_URL_SECONDS}
            else:
                # The download page streams the file and records the download itself.
                services.export_check_downloadable(access_request)
                payload = {"url": download_page_url(request, access_request), "expires_in": None}
        except services.AccessRequestRefused as refused:
            return _refusal(refused)
        payload["filename"] = services.export_filename(access_request)
        return Response(DownloadLinkSerializer(payload).data)


class StaffAccessRequestPermission(permissions.BasePermission):
    """Staff with the model permission: view to read, change to act. Anyone who is not staff gets
    404, as if the staff API were not there; staff without the permission get 403."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if not user.is_staff or not user.is_active:
            raise NotFound
        needed = "view" if request.method in permissions.SAFE_METHODS else "change"
        return bool(user.has_perm(f"access_requests.{needed}_accessrequest"))


class StaffPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


@extend_schema_view(
    list=extend_schema(summary="All access requests (staff)", parameters=[StaffFilterSerializer]),
    retrieve=extend_schema(
        summary="One access request (staff)",
        parameters=[REQUEST_ID],
        responses={200: StaffAccessRequestSerializer, **ERRORS},
    ),
)
class StaffAccessRequestViewSet(NeverCachedViewSet):
    """Staff: every customer's access requests, and the actions on them."""

    authentication_classes = [PortalSessionAuthentication]
    permission_classes = [StaffAccessRequestPermission]
    serializer_class = StaffAccessRequestSerializer
    pagination_class = StaffPagination
    lookup_url_kwarg = "request_id"
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> Any:
        filters = StaffFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.access_requests_for_staff(
            status=filters.validated_data.get("status"),
            customer_id=filters.validated_data.get("customer"),
            overdue=filters.validated_data.get("overdue"),
        )

    def get_object(self) -> AccessRequest:
        return selectors.access_request_get_for_staff(request_id=self.kwargs[self.lookup_url_kwarg])

    def list(self, request: Request) -> Response:
        queryset = self.get_queryset()
        page = self.paginate_queryset(queryset)
        if page is not None:
            return self.get_paginated_response(self.get_serializer(page, many=True).data)
        return Response(self.get_serializer(queryset, many=True).data)

    def retrieve(self, request: Request, request_id: str) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def _act(self, request: Request, act: Any, *, with_reason: bool) -> Response:
        access_request = self.get_object()
        arguments: dict[str, Any] = {"access_request": access_request, "acting_user": request.user}
        if with_reason:
            reason = ReasonSerializer(data=request.data)
            reason.is_valid(raise_exception=True)
            arguments["reason"] = reason.validated_data["reason"]
        try:
            access_request = act(**arguments)
        except services.AccessRequestRefused as refused:
            return _refusal(refused)
        return Response(self.get_serializer(access_request).data)

    @extend_schema(
        summary="Extend the deadline by two months, once, with the reason",
        request=ReasonSerializer,
        parameters=[REQUEST_ID],
        responses={
            200: StaffAccessRequestSerializer,
            400: ErrorSerializer,
            404: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def extend(self, request: Request, request_id: str) -> Response:
        return self._act(request, services.access_request_extend, with_reason=True)

    @extend_schema(
        summary="Reject the request, with the reason",
        request=ReasonSerializer,
        parameters=[REQUEST_ID],
        responses={
            200: StaffAccessRequestSerializer,
            400: ErrorSerializer,
            404: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, request_id: str) -> Response:
        return self._act(request, services.access_request_reject, with_reason=True)

    @extend_schema(
        summary="Build a failed export again",
        request=None,
        parameters=[REQUEST_ID],
        responses={200: StaffAccessRequestSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, request_id: str) -> Response:
        return self._act(request, services.access_request_retry, with_reason=False)
