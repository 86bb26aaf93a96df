"""Identity: users, sessions, linked accounts and single-use verifications (schema `auth`)."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils import timezone

from sv_sdk.db.fields import EncryptedTextField, id_field
from sv_sdk.db.tables import schema_table
from sv_sdk.errors import ValidationFailed

from .addresses import email_key, email_normalize


class UserQuerySet(models.QuerySet):
    def with_email(self, email: str):
        """The user whose address is `email` by the one comparison rule (addresses.email_key);
        none for a string that is no address."""
        try:
            return self.filter(email_key=email_key(email))
        except ValidationFailed:
            return self.none()


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    def get_by_natural_key(self, username):
        return self.with_email(username).get()

    def create_user(self, email, password=None, **extra_fields):
        return self._onboard(email=email, password=password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.update(is_staff=True, is_superuser=True)
        return self._onboard(email=email, password=password, **extra_fields)

    # Django's createsuperuser and anything else that calls the manager get the
    # full onboarding (role, cache, audit, verification email). The flow spans
    # apps, so it lives above this one: the top layer registers it at start-up.
    _onboarding = None

    @classmethod
    def register_onboarding(cls, flow) -> None:
        cls._onboarding = staticmethod(flow)

    def _onboard(self, **fields):
        if self._onboarding is None:
            raise ImproperlyConfigured(
                "No onboarding flow is registered (is platform_app installed?)."
            )
        return self._onboarding(**fields)


class User(AbstractBaseUser):
    id = id_field()
    # Longer than Django's 128: a hash imported from better-auth takes 180 (auth_app.hashers).
    password = models.CharField("password", max_length=255)
    # Normalised (addresses.email_normalize): NFKC, IDNA ASCII domain; letter case as given.
    email = models.EmailField(max_length=254)
    # The unique comparison key, kept by save() from `email` (addresses.email_key).
    email_key = models.CharField(max_length=254, editable=False)
    email_verified = models.BooleanField(default=False)
    name = models.CharField(max_length=200, blank=True)
    image = models.URLField(max_length=2000, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    is_superuser = models.BooleanField(default=False)
    banned_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        db_table = schema_table("auth", "users")
        constraints = [
            models.UniqueConstraint(fields=["email_key"], name="users_email_key_uniq"),
        ]
        # Sign-ups per day on the dashboard, and the user list's newest-first order.
        indexes = [
            models.Index(fields=["created_at"], name="users_created_idx"),
            # The dashboard's staff figures read the few staff among all users.
            models.Index(
                fields=["created_at"], condition=models.Q(is_staff=True), name="users_staff_idx"
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self):
        return self.email

    def save(self, *args, **kwargs):
        # Every write of `email` writes its key too, whichever path changed it.
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "email" in update_fields:
            self.email = email_normalize(self.email)
            self.email_key = email_key(self.email)
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "email_key"}
        super().save(*args, **kwargs)

    def get_full_name(self):
        return self.name or self.email

    def get_short_name(self):
        return self.name or self.email

    # Permission checks follow roles through the authentication backends; an
    # active superuser holds every permission.
    def has_perm(self, perm, obj=None):
        if self.is_active and self.is_superuser:
            return True
        from django.contrib.auth.models import _user_has_perm

        return _user_has_perm(self, perm, obj)

    def has_perms(self, perm_list, obj=None):
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label):
        if self.is_active and self.is_superuser:
            return True
        from django.contrib.auth.models import _user_has_module_perms

        return _user_has_module_perms(self, app_label)


class Session(models.Model):
    id = id_field()
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    # SHA-256 of the token; the token itself is never stored.
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    # How the user proved who they are (RFC 8176 names: pwd, otp, webauthn, oauth),
    # and when they last did; sensitive actions need that to be recent.
    amr = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    authenticated_at = models.DateTimeField(default=timezone.now)
    # Set when the user must enrol a second factor: past this time the session
    # reaches only the enrolment endpoints; cleared when they enrol.
    mfa_enroll_by = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = schema_table("auth", "sessions")
        indexes = [models.Index(fields=["user", "expires_at"], name="sessions_user_expires_idx")]

    def __str__(self):
        return f"session {self.id} of {self.user_id}"


class Account(models.Model):
    """An external identity (OAuth provider account) linked to a user."""

    id = id_field()
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="accounts")
    provider_id = models.CharField(max_length=100)
    account_id = models.CharField(max_length=255)
    # Encrypted at rest with SV_ENCRYPTION_KEYS (see sv_sdk.crypto).
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    id_token = EncryptedTextField(blank=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    scope = models.TextField(blank=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)
    # The provider refused the refresh token: the user must sign in with it again.
    needs_reconsent = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = schema_table("auth", "accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["provider_id", "account_id"], name="accounts_provider_account_uniq"
            ),
        ]

    def __str__(self):
        return f"{self.provider_id}:{self.account_id}"


class Verification(models.Model):
    """A single-use token (email verification, password reset), stored hashed."""

    id = id_field()
    # Purpose and subject, e.g. "email-verification:<user id>".
    identifier = models.CharField(max_length=255)
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="verifications", null=True, blank=True
    )
    value_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = schema_table("auth", "verifications")
        indexes = [models.Index(fields=["identifier"], name="verifications_identifier_idx")]

    def __str__(self):
        return self.identifier


class OAuthState(models.Model):
    """One sign-in (or link) with a provider in flight: single use, short-lived.

    The `state` sent to the provider and the browser-binding cookie are stored as
    SHA-256 hashes; the PKCE verifier and the nonce are encrypted.
    """

    id = id_field()
    state_hash = models.CharField(max_length=64, unique=True)
    browser_hash = models.CharField(max_length=64)
    provider_id = models.CharField(max_length=100)
    code_verifier = EncryptedTextField()
    nonce = EncryptedTextField()
    callback_url = models.URLField(max_length=2000)
    # "cookie": the callback sets the session cookie; "code": it hands a one-time code.
    mode = models.CharField(max_length=10)
    # Set when a signed-in user links a provider; empty for a sign-in.
    link_user = models.ForeignKey(User, on_delete=models.CASCADE, null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = schema_table("auth", "oauth_states")
        indexes = [models.Index(fields=["expires_at"], name="oauth_states_expires_idx")]

    def __str__(self):
        return f"{self.provider_id} sign-in {self.id}"


class RateLimit(models.Model):
    """A counter shared by every worker process: requests per key per fixed window.

    Keys look like "sign_in:203.0.113.7", "forgot_password:203.0.113.7:<email key>"
    or "lockout:<ip>:user:<id>". A lockout row also carries `blocked_until`.
    """

    # Room for a scope, an IPv6 address and a 254-character email key.
    key = models.CharField(max_length=400, primary_key=True)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    blocked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = schema_table("auth", "rate_limits")

    def __str__(self):
        return f"{self.key}: {self.count}"


class TwoFactor(models.Model):
    """A user's TOTP authenticator (RFC 6238); inert until a first code confirms it."""

    id = id_field()
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="two_factor")
    # Base32 secret, encrypted at rest with SV_ENCRYPTION_KEYS.
    secret = EncryptedTextField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The 30-second step of the last accepted code: a code is good once.
    last_used_step = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = schema_table("auth", "two_factors")

    def __str__(self):
        return f"TOTP of {self.user_id}"


class RecoveryCode(models.Model):
    """A single-use recovery code, stored as its SHA-256."""

    id = id_field()
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = schema_table("auth", "recovery_codes")
        constraints = [
            models.UniqueConstraint(fields=["user", "code_hash"], name="recovery_codes_code_uniq")
        ]

    def __str__(self):
        return f"recovery code of {self.user_id}"


class Passkey(models.Model):
    """A WebAuthn credential (passkey) registered by a user."""

    id = id_field()
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="passkeys")
    name = models.CharField(max_length=100)
    # base64url of the credential ID the authenticator chose.
    credential_id = models.CharField(max_length=1400, unique=True)
    public_key = models.BinaryField()
    sign_count = models.BigIntegerField(default=0)
    # "single_device" or "multi_device" (backup eligible), and whether it is backed up now.
    device_type = models.CharField(max_length=20)
    backed_up = models.BooleanField(default=False)
    transports = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = schema_table("auth", "passkeys")
        ordering = ["created_at"]

    def __str__(self):
        return self.name


class PasskeyChallenge(models.Model):
    """A WebAuthn challenge the server issued: single use, short-lived, stored as its SHA-256.

    `user` is empty for a passwordless sign-in, where nobody is known yet.
    """

    class Purpose(models.TextChoices):
        REGISTER = "register"
        AUTHENTICATE = "authenticate"

    id = id_field()
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    challenge_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = schema_table("auth", "passkey_challenges")

    def __str__(self):
        return f"{self.purpose} challenge"
