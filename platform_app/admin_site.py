"""The admin site: a login rate limited like the API's, and the operators' dashboard."""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from auth_app.errors import RateLimited


class AdminLoginForm(AdminAuthenticationForm):
    """Django's admin login form; a rate limit or lockout becomes a form error, not a 500."""

    def clean(self):
        try:
            return super().clean()
        except RateLimited as exc:
            raise ValidationError(
                "%(detail)s Try again in %(seconds)s seconds.",
                code="rate_limited",
                params={"detail": exc.detail, "seconds": exc.retry_after},
            ) from None


class SvAdminSite(admin.AdminSite):
    site_header = "sv_sdk administration"
    site_title = "sv_sdk admin"
    index_title = "Operations"
    login_form = AdminLoginForm
    index_template = "admin/sv_sdk/index.html"

    def index(self, request, extra_context=None):
        # Imported here: platform_app.admin registers model admins on this very site.
        from platform_app.admin import dashboard

        context = {"dashboard": dashboard(request), **(extra_context or {})}
        return super().index(request, context)
