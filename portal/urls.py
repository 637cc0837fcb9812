from django.contrib import admin
from django.urls import include, path

from portal import views
from portal.health import PortalHealthView

admin.site.site_header = "WP Hosting – kundedata"
admin.site.site_title = "Kundedata"
admin.site.index_title = "Administrasjon"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", PortalHealthView.as_view(), name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("allauth.urls")),
    path("", include("access_requests.urls")),
    path("admin/", admin.site.urls),
]
