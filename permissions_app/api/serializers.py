"""Output shapes of the permissions API (input serializers live with their views)."""

from rest_framework import serializers

from permissions_app.models import Role


class RoleOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Role
        fields = [
            "id",
            "name",
            "description",
            "permissions",
            "is_system",
            "requires_mfa",
            "created_at",
            "updated_at",
        ]


class RoleRefSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class AssignedRoleSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    permissions = serializers.ListField(child=serializers.CharField())


class AssignmentOutputSerializer(serializers.Serializer):
    role = AssignedRoleSerializer()
    granted_at = serializers.DateTimeField()
    granted_by_id = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
