"""Output shapes of the identity API (input serializers live with their views)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from auth_app.services import NAME_FORBIDDEN

# Plain serializers with explicit fields: a ModelSerializer rebuilds its fields from
# the model on every instantiation, which was the largest cost of a session check.


class UserOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    # As stored: an address accepted at sign-up need not pass a stricter `format: email`.
    email = serializers.CharField()
    email_verified = serializers.BooleanField()
    name = serializers.CharField()
    image = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AccountOutputSerializer(serializers.Serializer):
    """A linked identity, without its tokens."""

    id = serializers.CharField()
    provider_id = serializers.CharField()
    account_id = serializers.CharField()
    scope = serializers.CharField()
    last_sign_in_at = serializers.DateTimeField(allow_null=True)
    needs_reconsent = serializers.BooleanField(
        help_text="The provider refused the refresh token: sign in with it again."
    )
    created_at = serializers.DateTimeField()


class MeOutputSerializer(UserOutputSerializer):
    accounts = AccountOutputSerializer(many=True, read_only=True)


class NewSessionOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once; send it as `Authorization: Bearer`.")
    expires_at = serializers.DateTimeField()


class SessionOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    ip_address = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()
    amr = serializers.ListField(
        child=serializers.CharField(),
        help_text="How the sign-in was made (RFC 8176): pwd, otp, webauthn, oauth.",
    )
    current = serializers.SerializerMethodField()

    def get_current(self, session) -> bool:
        current = self.context.get("current_session_id")
        return current is not None and session.pk == current


class SignedInOutputSerializer(serializers.Serializer):
    user = UserOutputSerializer()
    session = NewSessionOutputSerializer()


class SessionInfoOutputSerializer(serializers.Serializer):
    user = UserOutputSerializer()
    session = SessionOutputSerializer()


class RevokedOutputSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="How many sessions ended.")


class MfaRequiredOutputSerializer(serializers.Serializer):
    """The answer to a correct password of a user with a second factor: no session yet."""

    mfa_required = serializers.BooleanField()
    mfa_token = serializers.CharField(help_text="Single use; send it to auth/mfa/verify.")
    expires_at = serializers.DateTimeField()
    methods = serializers.ListField(child=serializers.CharField())


class PasskeyOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    backed_up = serializers.BooleanField()


class MfaStatusOutputSerializer(serializers.Serializer):
    totp_enabled = serializers.BooleanField()
    totp_pending = serializers.BooleanField()
    recovery_codes_left = serializers.IntegerField()
    passkeys = PasskeyOutputSerializer(many=True)
    methods = serializers.ListField(child=serializers.CharField())
    enrollment_required_by = serializers.DateTimeField(
        allow_null=True, help_text="Set when your roles require a second factor you lack."
    )


class TotpEnrolmentOutputSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="Base32; for apps that cannot scan the QR code.")
    otpauth_uri = serializers.CharField()
    qr_svg = serializers.CharField(help_text="The otpauth URI as an SVG QR code.")


class RecoveryCodesOutputSerializer(serializers.Serializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(), help_text="Shown only now; each works once."
    )


class PasskeyRegisteredOutputSerializer(PasskeyOutputSerializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(),
        help_text="New recovery codes when this is your first second factor; else empty.",
    )


class ReauthenticatedOutputSerializer(serializers.Serializer):
    authenticated_at = serializers.DateTimeField()
    amr = serializers.ListField(child=serializers.CharField())


class CsrfOutputSerializer(serializers.Serializer):
    csrf_token = serializers.CharField(
        help_text="Send it as `X-CSRFToken` on unsafe requests signed in by the cookie."
    )


# An image is a URL Django's URLValidator accepts (http, https, ftp or ftps, a real host):
# stricter than `format: uri`, so it is an unstated rule of the operations taking one.
IMAGE_RULE = "`image` must be an http(s) or ftp(s) URL with a host: 400 naming `image` otherwise."


@extend_schema_field({"type": "string", "maxLength": 200, "pattern": f"^[^{NAME_FORBIDDEN}]*$"})
class UserNameField(serializers.CharField):
    """A user's name as input: the schema states the rule that
    auth_app.services.user_name_clean enforces (one line, no control characters)."""

    def __init__(self, **kwargs):
        super().__init__(max_length=200, allow_blank=True, required=False, **kwargs)
