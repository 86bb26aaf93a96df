"""The permissions API: roles, a user's role assignments, and one's own permissions.

One class per path; each operation (method) has its own nested serializers
and names the permission it needs in `required_permissions`.
"""

from django.db.models import F, Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.models import User
from permissions_app import selectors, services
from permissions_app.catalogue import grantable
from permissions_app.errors import RoleInUse, RoleNameTaken, SystemRole, UnknownPermission
from permissions_app.models import Role
from sv_sdk.api.pagination import CursorPagination
from sv_sdk.api.permissions import MethodPermission
from sv_sdk.api.schema import UNSTATED_RULES
from sv_sdk.api.serializers import StrictSerializer, problems

from .serializers import (
    AssignmentOutputSerializer,
    RoleOutputSerializer,
)


@extend_schema_field({"type": "string", "enum": grantable()})
class PermissionField(serializers.CharField):
    """A catalogue permission or wildcard (400 `unknown_permission` for anything else)."""


class RolePagination(CursorPagination):
    ordering = "name"


class AssignmentPagination(CursorPagination):
    ordering = "role_name"


class RoleCollectionApi(APIView):
    pagination_class = RolePagination
    permission_classes = [MethodPermission]
    required_permissions = {"GET": "roles:read", "POST": "roles:write"}

    class CreateInputSerializer(StrictSerializer):
        name = serializers.SlugField(max_length=100)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        permissions = serializers.ListField(
            child=PermissionField(max_length=100),
            max_length=100,
            required=False,
            default=list,
        )

    @extend_schema(
        operation_id="roles_list",
        responses={200: RoleOutputSerializer(many=True), **problems(400, 401, 403)},
    )
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(Role.objects.all(), request, view=self)
        return paginator.get_paginated_response(RoleOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="roles_create",
        request=CreateInputSerializer,
        responses={
            201: RoleOutputSerializer,
            **problems(UnknownPermission, 401, 403, RoleNameTaken),
        },
    )
    def post(self, request):
        data = self.CreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        role = services.role_create(**data.validated_data, actor=request.user)
        return Response(RoleOutputSerializer(role).data, status=status.HTTP_201_CREATED)


class RoleDetailApi(APIView):
    permission_classes = [MethodPermission]
    required_permissions = {"GET": "roles:read", "PATCH": "roles:write", "DELETE": "roles:write"}

    class UpdateInputSerializer(StrictSerializer):
        name = serializers.SlugField(max_length=100, required=False)
        description = serializers.CharField(required=False, allow_blank=True)
        permissions = serializers.ListField(
            child=PermissionField(max_length=100), max_length=100, required=False
        )

    class DeleteQuerySerializer(serializers.Serializer):
        force = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        operation_id="roles_get", responses={200: RoleOutputSerializer, **problems(401, 403, 404)}
    )
    def get(self, request, role_id):
        return Response(RoleOutputSerializer(get_object_or_404(Role, pk=role_id)).data)

    @extend_schema(
        operation_id="roles_update",
        request=UpdateInputSerializer,
        responses={
            200: RoleOutputSerializer,
            **problems(UnknownPermission, 401, 403, 404, RoleNameTaken, SystemRole),
        },
    )
    def patch(self, request, role_id):
        role = get_object_or_404(Role, pk=role_id)
        data = self.UpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        role = services.role_update(role=role, **data.validated_data, actor=request.user)
        return Response(RoleOutputSerializer(role).data)

    @extend_schema(
        operation_id="roles_delete",
        parameters=[
            OpenApiParameter(
                "force", bool, description="Also revoke the role from everyone who holds it."
            )
        ],
        responses={204: None, **problems(400, 401, 403, 404, RoleInUse, SystemRole)},
    )
    def delete(self, request, role_id):
        role = get_object_or_404(Role, pk=role_id)
        query = self.DeleteQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        services.role_delete(role=role, force=query.validated_data["force"], actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserRoleCollectionApi(APIView):
    pagination_class = AssignmentPagination
    permission_classes = [MethodPermission]
    required_permissions = {"GET": "roles:read", "POST": "roles:assign"}

    class GrantInputSerializer(StrictSerializer):
        role = serializers.CharField(max_length=100, help_text="The role's id or name.")
        expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    @extend_schema(
        operation_id="user_roles_list",
        responses={200: AssignmentOutputSerializer(many=True), **problems(400, 401, 403, 404)},
    )
    def get(self, request, user_id):
        user = get_object_or_404(User, pk=user_id)
        assignments = selectors.user_assignments(user_id=user.pk).annotate(
            role_name=F("role__name")
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(assignments, request, view=self)
        return paginator.get_paginated_response(AssignmentOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="user_roles_grant",
        description="`role` must name an existing role, by id or name, and `expires_at` must"
        " be in the future: a 400 naming the field otherwise.",
        extensions={UNSTATED_RULES: ["role", "expires_at"]},
        request=GrantInputSerializer,
        responses={
            201: AssignmentOutputSerializer,
            200: AssignmentOutputSerializer,
            **problems(400, 401, 403, 404),
        },
    )
    def post(self, request, user_id):
        user = get_object_or_404(User, pk=user_id)
        data = self.GrantInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = data.validated_data["role"]
        role = Role.objects.filter(Q(pk=wanted) | Q(name=wanted)).first()
        if role is None:
            raise serializers.ValidationError({"role": ["No such role."]})
        assignment = services.role_grant(
            user=user,
            role=role,
            granted_by=request.user,
            expires_at=data.validated_data["expires_at"],
        )
        return Response(
            AssignmentOutputSerializer(assignment).data,
            status=status.HTTP_200_OK if assignment.renewed else status.HTTP_201_CREATED,
        )


class UserRoleDetailApi(APIView):
    permission_classes = [MethodPermission]
    required_permissions = {"DELETE": "roles:assign"}

    @extend_schema(
        operation_id="user_roles_revoke", responses={204: None, **problems(401, 403, 404)}
    )
    def delete(self, request, user_id, role_id):
        user = get_object_or_404(User, pk=user_id)
        role = get_object_or_404(Role, pk=role_id)
        services.role_revoke(user=user, role=role, revoked_by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyPermissionsApi(APIView):
    class OutputSerializer(serializers.Serializer):
        permissions = serializers.ListField(child=serializers.CharField())
        roles = serializers.ListField(child=serializers.CharField())
        valid_until = serializers.DateTimeField(
            allow_null=True, help_text="When the next of your roles expires."
        )

    @extend_schema(
        operation_id="auth_me_permissions", responses={200: OutputSerializer, **problems(401)}
    )
    def get(self, request):
        # The cache row came with the session: no query unless an expiry passed.
        effective = selectors.effective_for_user(request.user)
        permissions = selectors.permissions_for_user(request.user)
        body = {
            "permissions": sorted(permissions),
            "roles": list(effective.roles),
            "valid_until": effective.valid_until,
        }
        return Response(self.OutputSerializer(body).data)
