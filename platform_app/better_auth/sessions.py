"""The caller's sessions (getSession, listSessions, revokeSession, revokeSessions,
revokeOtherSessions)."""

from django.db.models import Q
from django.http import JsonResponse
from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response

from auth_app import services
from auth_app.models import Session
from auth_app.tokens import token_hash

from .base import BetterAuthApi, Input, signed_out, status_true
from .cookies import bearer_token
from .shapes import session_json, user_json


class GetSessionApi(BetterAuthApi):
    public = True
    mfa_enrollment = True  # a session limited to enrolment still sees itself

    def get(self, request):
        if self.session is None:
            # JSON null; DRF would send an empty body for None.
            return JsonResponse(None, safe=False, headers={"Cache-Control": "no-store"})
        body = {"session": session_json(self.session), "user": user_json(request.user)}
        return Response(body, headers={"Cache-Control": "no-store"})


class ListSessionsApi(BetterAuthApi):
    def get(self, request):
        sessions = Session.objects.filter(
            user=request.user, expires_at__gt=timezone.now()
        ).order_by("created_at")
        return Response([session_json(session) for session in sessions])


class RevokeSessionApi(BetterAuthApi):
    class InputSerializer(Input):
        token = serializers.CharField(max_length=500)

    def post(self, request):
        value = self.body(self.InputSerializer)["token"]
        # The handle listSessions gave, or a session token (signed or raw) the caller holds.
        raw = bearer_token(value) or ""
        session = Session.objects.filter(
            Q(pk=value) | Q(token_hash=token_hash(raw)), user=request.user
        ).first()
        if session is not None:
            services.session_revoke(session=session, actor=request.user, reason="user")
        # As better-auth: the same answer for a session that is not (or no longer) there.
        return status_true()


class RevokeSessionsApi(BetterAuthApi):
    def post(self, request):
        services.sessions_revoke_for_user(user=request.user, actor=request.user, reason="user")
        return signed_out(request, {"status": True})


class RevokeOtherSessionsApi(BetterAuthApi):
    def post(self, request):
        services.sessions_revoke_for_user(
            user=request.user, actor=request.user, reason="revoke_others", keep=self.session
        )
        return status_true()
