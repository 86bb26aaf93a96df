"""A plain admin site for tests: Django's own ModelAdmin behaviour, whatever the apps' admins do."""

from django.contrib import admin
from django.urls import include, path

from audit_app.admin_log import audited_delete_selected
from auth_app.models import User

site = admin.AdminSite(name="probe_admin")
site.add_action(audited_delete_selected, "delete_selected")


@admin.register(User, site=site)
class PlainUserAdmin(admin.ModelAdmin):
    fields = ["email", "name", "is_active"]


urlpatterns = [
    path("probe-admin/", site.urls),
    path("", include("platform_app.urls")),
]
