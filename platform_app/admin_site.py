"""The admin site: a login rate limited like the API's and with its second factor, the
operators' dashboard, and the second-factor page staff must visit before anything else."""

import json

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from audit_app.context import clean_user_agent
from auth_app import mfa, signin
from auth_app.errors import RateLimited
from auth_app.services import sign_in_succeeded
from auth_app.session_store import AMR_SESSION_KEY
from sv_sdk.db.replicas import lag_tolerant
from sv_sdk.errors import ApplicationError
from sv_sdk.net import client_ip


def _rate_limited(exc: RateLimited) -> ValidationError:
    return ValidationError(
        "%(detail)s Try again in %(seconds)s seconds.",
        code="rate_limited",
        params={"detail": exc.detail, "seconds": exc.retry_after},
    )


class AdminLoginForm(AdminAuthenticationForm):
    """Django's admin login form, in two steps for a user with a second factor.

    The password step of such a user logs nobody in: the form comes back with an
    `mfa_token` and asks for a TOTP code, a recovery code or a passkey; the second
    step (the same form, with the token) logs in. A rate limit or lockout becomes a
    form error, not a 500.
    """

    mfa_token = forms.CharField(required=False, widget=forms.HiddenInput)
    method = forms.CharField(required=False, widget=forms.HiddenInput)
    code = forms.CharField(required=False, max_length=64, label="Code")
    credential = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.second_step = bool(self.data.get("mfa_token"))
        if self.second_step:
            self.fields["username"].required = False
            self.fields["password"].required = False
        self.methods: list[str] = []

    def clean(self):
        try:
            if self.second_step:
                return self._clean_second_step()
            cleaned = super().clean()
        except RateLimited as exc:
            raise _rate_limited(exc) from None
        user = self.get_user()
        if mfa.mfa_enabled(user):
            token, _expires = signin.mfa_token_issue(user=user, first_factor="pwd")
            self._ask_second_factor(user, token)
            raise ValidationError(
                "Enter the code from your authenticator app or a recovery code, or use a passkey.",
                code="mfa_required",
            )
        return cleaned

    def _ask_second_factor(self, user, token: str) -> None:
        self.second_step = True
        self.methods = mfa.mfa_methods(user)
        self.data = self.data.copy()
        self.data["mfa_token"] = token
        self.data["code"] = ""

    def _clean_second_step(self):
        data = self.cleaned_data
        ip = client_ip(self.request)
        agent = clean_user_agent(self.request.META.get("HTTP_USER_AGENT"))
        code = (data.get("code") or "").strip()
        method = data.get("method") or ("totp" if code.isdigit() else "recovery_code")
        try:
            credential = json.loads(data["credential"]) if data.get("credential") else None
        except ValueError:
            credential = None

        def log_in(user, amr):
            self.confirm_login_allowed(user)
            sign_in_succeeded(user=user, email=user.email, ip_address=ip, user_agent=agent)
            return user, amr

        try:
            user, amr = signin.mfa_token_use(
                mfa_token=data.get("mfa_token", ""),
                method=method,
                code=code,
                credential=credential,
                ip_address=ip,
                user_agent=agent,
                then=log_in,
            )
        except RateLimited as exc:
            raise _rate_limited(exc) from None
        except ApplicationError as exc:
            if exc.code != "token_invalid":
                self.methods = mfa.mfa_methods(signin.mfa_token_user(mfa_token=data["mfa_token"]))
                self.data = self.data.copy()
                self.data["code"] = ""
            else:
                self.second_step = False
            raise ValidationError(exc.detail, code=exc.code) from None
        user.backend = "auth_app.backends.EmailBackend"  # the backend that checked the password
        self.user_cache = user
        # The session row records how this login was made (see auth_app.session_store).
        self.request.session[AMR_SESSION_KEY] = amr
        return data


class EnrolTotpForm(forms.Form):
    code = forms.CharField(max_length=16, label="Code from the app")


# Admin pages whose reads (GET only) may come from a replica: every change list, and the
# dashboard on the index (sv_sdk.db.replicas, docs/scaling.md).
_LAG_TOLERANT_VIEWS = frozenset({"changelist_view", "index"})


class SvAdminSite(admin.AdminSite):
    site_header = "sv_sdk administration"
    site_title = "sv_sdk admin"
    index_title = "Operations"
    login_form = AdminLoginForm
    login_template = "admin/sv_sdk/login.html"
    index_template = "admin/sv_sdk/index.html"

    def index(self, request, extra_context=None):
        # Imported here: platform_app.admin registers model admins on this very site.
        from platform_app.admin import dashboard

        context = {"dashboard": dashboard(request), **(extra_context or {})}
        return super().index(request, context)

    def get_urls(self):
        mfa_view = self.admin_view(self.second_factor_view)
        return [path("mfa/", mfa_view, name="mfa"), *super().get_urls()]

    def admin_view(self, view, cacheable=False):
        """Every admin page, but the second-factor page and logout, is closed to staff who
        must enrol a second factor and have not."""
        # Inside admin_view's own checks, which read the primary.
        tolerant = getattr(view, "__name__", "") in _LAG_TOLERANT_VIEWS
        inner = super().admin_view(lag_tolerant(view) if tolerant else view, cacheable)
        if view in (self.second_factor_view, self.logout):
            return inner

        def gated(request, *args, **kwargs):
            user = request.user
            if user.is_active and user.is_staff:
                deadline = mfa.mfa_enroll_deadline(user)
                if deadline is not None and deadline <= timezone.now():
                    return redirect("admin:mfa")
            return inner(request, *args, **kwargs)

        gated.__wrapped__ = inner
        return gated

    def second_factor_view(self, request):
        """Your own second factors: enrol an authenticator app, see what you have."""
        user = request.user
        context = {**self.each_context(request), "title": "Two-factor authentication"}
        form = EnrolTotpForm()
        if request.method == "POST" and "start" in request.POST:
            try:
                context["enrolment"] = mfa.totp_enroll_start(user=user)
            except ApplicationError as exc:
                context["error"] = exc.detail
        elif request.method == "POST":
            form = EnrolTotpForm(request.POST)
            if form.is_valid():
                try:
                    context["recovery_codes"] = mfa.totp_confirm(
                        user=user,
                        code=form.cleaned_data["code"],
                        ip_address=client_ip(request),
                        user_agent=clean_user_agent(request.META.get("HTTP_USER_AGENT")),
                    )
                except ApplicationError as exc:
                    context["error"] = exc.detail
        if "recovery_codes" not in context and "enrolment" not in context:
            context["enrolment"] = mfa.totp_enrolment_pending(user=user)
        deadline = mfa.mfa_enroll_deadline(user)
        context.update(
            form=form,
            methods=mfa.mfa_methods(user),
            recovery_codes_left=mfa.recovery_codes_left(user),
            passkeys=user.passkeys.all(),
            required=deadline is not None,
            overdue=deadline is not None and deadline <= timezone.now(),
        )
        return TemplateResponse(request, "admin/sv_sdk/mfa.html", context)
