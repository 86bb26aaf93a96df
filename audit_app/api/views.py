"""The audit log API: list with filters and detail, for holders of audit:read."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from sv_sdk.api.pagination import NewestFirstCursorPagination, list_filters

# The API edge checks permissions; the audit models and services import no other app.
from sv_sdk.api.permissions import HasPermission
from sv_sdk.api.schema import UNSTATED_RULES
from sv_sdk.api.serializers import UtcJSONField, problems
from sv_sdk.db.replicas import lag_tolerant
from sv_sdk.errors import NotFound

from ..models import READABLE_FIELDS, AuditLog
from ..selectors import audit_log_list

_MAX_ID = 2**63 - 1


class AuditLogOutputSerializer(serializers.ModelSerializer):
    metadata = UtcJSONField()

    class Meta:
        model = AuditLog
        fields = READABLE_FIELDS


class AuditLogPagination(NewestFirstCursorPagination):
    # Newest first by time, which the (filter column, occurred_at) indexes serve;
    # the id breaks ties.
    ordering = ("-occurred_at", "-id")


class AuditLogListApi(generics.ListAPIView):
    permission_classes = [HasPermission("audit:read")]
    pagination_class = AuditLogPagination
    serializer_class = AuditLogOutputSerializer

    class FilterSerializer(serializers.Serializer):
        event_type = serializers.CharField(max_length=100, required=False)
        actor_id = serializers.CharField(max_length=36, required=False)
        user_id = serializers.CharField(max_length=36, required=False)
        target_type = serializers.CharField(max_length=100, required=False)
        target_id = serializers.CharField(max_length=100, required=False)
        since = serializers.DateTimeField(required=False, help_text="Inclusive, ISO 8601.")
        until = serializers.DateTimeField(required=False, help_text="Exclusive, ISO 8601.")

        def validate(self, attrs):
            since, until = attrs.get("since"), attrs.get("until")
            if since and until and since >= until:
                raise serializers.ValidationError({"until": ["Must be later than since."]})
            return attrs

    filter_serializer = FilterSerializer

    def get_queryset(self):
        return audit_log_list(**list_filters(self))

    @extend_schema(
        operation_id="audit_logs_list",
        description="`since` must be earlier than `until` (a 400 naming `until` otherwise).",
        extensions={UNSTATED_RULES: ["until"]},
        parameters=[FilterSerializer],
        responses={200: AuditLogOutputSerializer(many=True), **problems(400, 401, 403)},
    )
    @lag_tolerant
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class AuditLogDetailApi(APIView):
    permission_classes = [HasPermission("audit:read")]

    @extend_schema(
        operation_id="audit_logs_retrieve",
        responses={200: AuditLogOutputSerializer, **problems(401, 403, 404)},
    )
    @lag_tolerant
    def get(self, request, log_id: int):
        row = AuditLog.objects.filter(id=log_id).first() if log_id <= _MAX_ID else None
        if row is None:
            raise NotFound("No audit log entry with this id.")
        return Response(AuditLogOutputSerializer(row).data)
