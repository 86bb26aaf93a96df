"""Admin view of any user's sessions: list (sessions:read) and revoke all (sessions:revoke)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.api.serializers import RevokedOutputSerializer, SessionOutputSerializer
from auth_app.api.views import session_page
from auth_app.models import Session, User
from auth_app.services import sessions_revoke_for_user
from sv_sdk.api.pagination import NewestFirstCursorPagination
from sv_sdk.api.permissions import HasPermission
from sv_sdk.api.serializers import problems


class UserSessionListApi(APIView):
    pagination_class = NewestFirstCursorPagination
    permission_classes = [HasPermission("sessions:read")]

    @extend_schema(
        operation_id="user_sessions",
        responses={200: SessionOutputSerializer(many=True), **problems(400, 401, 403, 404)},
    )
    def get(self, request, user_id):
        user = get_object_or_404(User, pk=user_id)
        return session_page(self, Session.objects.filter(user=user))


class UserSessionRevokeApi(APIView):
    permission_classes = [HasPermission("sessions:revoke")]

    @extend_schema(
        operation_id="user_sessions_revoke",
        request=None,
        responses={200: RevokedOutputSerializer, **problems(401, 403, 404)},
    )
    def post(self, request, user_id):
        user = get_object_or_404(User, pk=user_id)
        count = sessions_revoke_for_user(user=user, actor=request.user, reason="admin")
        return Response({"revoked": count})
