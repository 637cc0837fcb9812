from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from portal import views
from portal.api_docs import api_docs
from portal.doors import account_urlpatterns
from portal.health import PortalHealthView

admin.site.site_header = "WP Hosting – kundedata"
admin.site.site_title = "Kundedata"
admin.site.index_title = "Administrasjon"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", PortalHealthView.as_view(), name="healthz"),
    path("privacy/", views.privacy, name="privacy"),
    path("my-data/analytics/", views.analytics_identifier, name="analytics_identifier"),
    path("i18n/", include("django.conf.urls.i18n")),
    # Only the doors (portal/doors.py): allauth's sign-up, e-mail and password pages are not routed.
    path("accounts/", include(account_urlpatterns())),
    path("", include("access_requests.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
    path("admin/", admin.site.urls),
]
