"""The customer's pages (/my-data/) and the API (/api/v1/)."""

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from access_requests import api, views

app_name = "access_requests"

router = SimpleRouter()
router.register("access-requests", api.CustomerAccessRequestViewSet, basename="api-access-request")
router.register("staff/access-requests", api.StaffAccessRequestViewSet, basename="api-staff-access-request")

urlpatterns: list[URLPattern | URLResolver] = [
    path("my-data/", views.my_data, name="my_data"),
    path("my-data/requests/", views.request_create, name="request_create"),
    path("my-data/requests/<uuid:request_id>/", views.request_detail, name="detail"),
    path("my-data/requests/<uuid:request_id>/status", views.request_status, name="status"),
    path("my-data/requests/<uuid:request_id>/download", views.request_download, name="download"),
    path("my-data/details/", views.details, name="details"),
    path("my-data/erasure/", views.erasure_start, name="erasure_start"),
    path("my-data/erasure/<uuid:request_id>/", views.erasure_confirm, name="erasure_confirm"),
    path("erasure/<str:token>/", views.erasure_receipt, name="erasure_receipt"),
    path("api/v1/", include(router.urls)),
]
