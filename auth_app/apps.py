from django.apps import AppConfig
from django.core import checks


class AuthAppConfig(AppConfig):
    name = "auth_app"
    verbose_name = "Identity"

    def ready(self):
        checks.register(oauth_providers_check, checks.Tags.security)


def oauth_providers_check(app_configs, **kwargs):
    """SV_OAUTH_PROVIDERS must parse: a typo is an error at start-up, not at the first sign-in."""
    from django.core.exceptions import ImproperlyConfigured

    from .oauth import providers

    try:
        providers()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="auth_app.E001")]
    return []
