"""Output shapes of the identity API (input serializers live with their views)."""

from rest_framework import serializers

# Plain serializers with explicit fields: a ModelSerializer rebuilds its fields from
# the model on every instantiation, which was the largest cost of a session check.


class UserOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    email = serializers.EmailField()
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
