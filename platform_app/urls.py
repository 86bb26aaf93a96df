"""URL configuration: admin, API v1, the better-auth compatible API, schema and a landing page."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

# Each app mounts its own API paths under /api/v1/ (no trailing slashes).
api_v1 = [
    path("", include("auth_app.api.urls")),
    path("", include("permissions_app.api.urls")),
    path("", include("audit_app.api.urls")),
    path("", include("email_app.api.urls")),
    path("", include("platform_app.api.urls")),
]

urlpatterns = [
    path("", TemplateView.as_view(template_name="sv_sdk/index.html"), name="index"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    # better-auth's protocol, for its official client (docs/better-auth.md).
    path("api/auth/", include("platform_app.better_auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("webhooks/anymail/", include("email_app.webhook_urls")),
]

handler404 = "sv_sdk.api.views.not_found"
handler500 = "sv_sdk.api.views.server_error"
