"""User management for administrators (`users:*`): list with roles, create, read, change, delete.

One class per path; each operation (method) has its own nested serializers
and names the permission it needs in `required_permissions`.
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.api.serializers import UserNameField
from auth_app.errors import EmailTaken
from auth_app.models import User
from permissions_app.api.serializers import RoleRefSerializer
from permissions_app.selectors import (
    USER_LIST_FIELDS,
    users_with_roles,
    users_with_roles_window,
)
from platform_app import flows
from sv_sdk.api.pagination import NewestFirstCursorPagination, RowSource, list_filters
from sv_sdk.api.permissions import MethodPermission
from sv_sdk.api.schema import PASSWORD_RULES, UNSTATED_RULES
from sv_sdk.api.serializers import StrictSerializer, problems, utc_json


class ManagedUserOutputSerializer(serializers.ModelSerializer):
    # As stored: an address accepted at sign-up need not pass a stricter `format: email`.
    email = serializers.CharField()
    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        # The list writes the same fields in SQL (users_with_roles_window).
        fields = [*USER_LIST_FIELDS, "roles"]

    @extend_schema_field(RoleRefSerializer(many=True))
    def get_roles(self, user) -> list[dict]:
        # `role_list` comes from users_with_roles(), in the same query as the user, as
        # JSON objects already shaped like RoleRefSerializer's output; a serializer per
        # user would only copy them (and cost a fresh set of fields each time).
        # PostgreSQL writes their `expires_at` with "+00:00"; the API writes "Z".
        return utc_json(getattr(user, "role_list", None) or [])


class UserPagination(NewestFirstCursorPagination):
    pass


def _user_or_404(user_id: str) -> User:
    user = users_with_roles().filter(pk=user_id).first()
    if user is None:
        raise Http404
    return user


class UserCollectionApi(APIView):
    pagination_class = UserPagination
    permission_classes = [MethodPermission]
    required_permissions = {"GET": "users:read", "POST": "users:write"}

    class ListQuerySerializer(serializers.Serializer):
        role = serializers.SlugField(
            max_length=100, required=False, help_text="Only users who hold this role (by name)."
        )

    filter_serializer = ListQuerySerializer

    class CreateInputSerializer(StrictSerializer):
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(
            max_length=1024, required=False, trim_whitespace=False, style={"input_type": "password"}
        )
        name = UserNameField(default="")
        is_staff = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        operation_id="users_list",
        parameters=[ListQuerySerializer],
        responses={200: ManagedUserOutputSerializer(many=True), **problems(400, 401, 403)},
    )
    def get(self, request):
        role = list_filters(self).get("role")
        paginator = self.pagination_class()
        # DRF's cursor logic over rows already shaped as ManagedUserOutputSerializer
        # would render them (see users_with_roles_window): on this busy read a
        # serializer per row cost more than the query. The two are kept equal by
        # test_the_user_list_renders_each_user_as_the_user_endpoint_does.
        page = paginator.paginate_queryset(
            RowSource(lambda **window: users_with_roles_window(role=role, **window)),
            request,
            view=self,
        )
        return paginator.get_paginated_response(page)

    @extend_schema(
        operation_id="users_create",
        description=PASSWORD_RULES,
        extensions={UNSTATED_RULES: ["password"]},
        request=CreateInputSerializer,
        responses={201: ManagedUserOutputSerializer, **problems(400, 401, 403, EmailTaken)},
    )
    def post(self, request):
        data = self.CreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = flows.user_onboard(**data.validated_data, actor=request.user, validate_password=True)
        return Response(
            ManagedUserOutputSerializer(_user_or_404(user.pk)).data, status=status.HTTP_201_CREATED
        )


class UserDetailApi(APIView):
    permission_classes = [MethodPermission]
    required_permissions = {"GET": "users:read", "PATCH": "users:write", "DELETE": "users:delete"}

    class UpdateInputSerializer(StrictSerializer):
        name = UserNameField()
        image = serializers.URLField(max_length=2000, required=False, allow_blank=True)
        is_active = serializers.BooleanField(required=False)
        is_staff = serializers.BooleanField(required=False)
        email_verified = serializers.BooleanField(required=False)

    @extend_schema(
        operation_id="users_get",
        responses={200: ManagedUserOutputSerializer, **problems(401, 403, 404)},
    )
    def get(self, request, user_id):
        return Response(ManagedUserOutputSerializer(_user_or_404(user_id)).data)

    @extend_schema(
        operation_id="users_update",
        request=UpdateInputSerializer,
        responses={200: ManagedUserOutputSerializer, **problems(400, 401, 403, 404)},
    )
    def patch(self, request, user_id):
        user = _user_or_404(user_id)
        data = self.UpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = flows.user_update(user=user, actor=request.user, **data.validated_data)
        return Response(ManagedUserOutputSerializer(user).data)

    @extend_schema(operation_id="users_delete", responses={204: None, **problems(401, 403, 404)})
    def delete(self, request, user_id):
        user = _user_or_404(user_id)
        flows.user_offboard(user=user, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
