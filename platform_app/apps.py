"""The top layer as an app: it composes the domain apps and registers what they call back."""

from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "platform_app"
    verbose_name = "sv_sdk platform"

    def ready(self):
        from auth_app import mfa
        from auth_app.models import User
        from permissions_app.selectors import mfa_required_since

        from .flows import user_onboard

        # The user manager (Django's createsuperuser, anything calling create_user)
        # onboards through the flow: registered from above, never imported from below.
        User.objects.register_onboarding(user_onboard)
        # Whether a user must enrol a second factor depends on their roles (permissions_app).
        mfa.register_requirement(mfa_required_since)
