"""Output shapes of the identity API (input serializers live with their views)."""

from rest_framework import serializers

from auth_app.models import Account, Session, User


class UserOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "email_verified", "name", "image", "created_at", "updated_at"]


class AccountOutputSerializer(serializers.ModelSerializer):
    """A linked identity, without its tokens."""

    class Meta:
        model = Account
        fields = ["id", "provider_id", "account_id", "scope", "created_at"]


class MeOutputSerializer(UserOutputSerializer):
    accounts = AccountOutputSerializer(many=True, read_only=True)

    class Meta(UserOutputSerializer.Meta):
        fields = [*UserOutputSerializer.Meta.fields, "accounts"]


class NewSessionOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once; send it as `Authorization: Bearer`.")
    expires_at = serializers.DateTimeField()


class SessionOutputSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField()

    class Meta:
        model = Session
        fields = [
            "id",
            "created_at",
            "last_seen_at",
            "expires_at",
            "ip_address",
            "user_agent",
            "current",
        ]

    def get_current(self, session) -> bool:
        current = self.context.get("current_session_id")
        return current is not None and session.pk == current


class SignedInOutputSerializer(serializers.Serializer):
    user = UserOutputSerializer()
    session = NewSessionOutputSerializer()


class SessionInfoOutputSerializer(serializers.Serializer):
    user = UserOutputSerializer()
    session = SessionOutputSerializer()
