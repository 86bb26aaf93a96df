"""Authentication backend: email (case-insensitive) and password, rate limited like the API."""

from django.contrib.auth.backends import ModelBackend

from audit_app.context import clean_user_agent
from sv_sdk.db.replicas import on_primary
from sv_sdk.net import client_ip

from . import services
from .errors import AccountDisabled, InvalidCredentials
from .mfa import mfa_enabled
from .models import User
from .ratelimit import rate_limit_hit
from .selectors import user_can_sign_in

# Django's authenticate() lets only PermissionDenied through quietly; RateLimited
# reaches the caller on purpose, so a login page can say "try again in N seconds"
# rather than "wrong password" (the admin's login form does, see platform_app/admin_site.py).


class EmailBackend(ModelBackend):
    """Password sign-in for Django logins (the admin), with the API sign-in's rules.

    Each attempt counts against the per-IP "sign_in" rate limit; the (IP, email)
    lockout, the failure audit rows and the unknown-email timing are those of
    `auth_app.signin.sign_in`. A banned or deactivated user cannot log in, and
    their existing Django sessions stop working (`get_user` refuses them).

    Permissions come from roles (permissions_app.backends.RoleBackend), not from
    Django's per-user/group permission tables, which this user model does not have.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        email = username if username is not None else kwargs.get(User.USERNAME_FIELD)
        if email is None or password is None:
            return None
        ip_address = client_ip(request) if request is not None else None
        user_agent = clean_user_agent(request.headers.get("User-Agent")) if request else ""
        if request is not None:
            rate_limit_hit(scope="sign_in", subject=ip_address or "unknown")
        try:
            user = services.credentials_check(
                email=email, password=password, ip_address=ip_address, user_agent=user_agent
            )
        except (InvalidCredentials, AccountDisabled):
            return None
        # Django's login() sets last_login and opens the session row afterwards. A user
        # with a second factor has signed in only once the login form checked it.
        if not mfa_enabled(user):
            services.sign_in_succeeded(
                user=user, email=email, ip_address=ip_address, user_agent=user_agent
            )
        return user

    @on_primary()
    def get_user(self, user_id):
        # The session check of every admin page: a deactivated user is refused at once.
        return super().get_user(user_id)

    def user_can_authenticate(self, user):
        return user_can_sign_in(user)

    def _get_permissions(self, user_obj, obj, from_name):
        return set()
