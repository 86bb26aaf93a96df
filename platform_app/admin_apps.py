"""The admin app, configured to use sv_sdk's admin site (platform_app/admin_site.py).

A module of its own because INSTALLED_APPS imports it before the models are
loaded, while the site's login form needs them.
"""

from django.contrib.admin.apps import AdminConfig


class SvAdminConfig(AdminConfig):
    default_site = "platform_app.admin_site.SvAdminSite"
