"""User management for administrators (`users:*`): list with roles, create, read, change, delete.

One class per path; each operation (method) has its own nested serializers
and names the permission it needs in `required_permissions`.
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.api.serializers import IMAGE_RULE, UserNameField
from auth_app.errors import EmailTaken
from auth_app.models import User
from permissions_app.api.serializers import RoleRefSerializer
from permissions_app.selectors import users_with_roles
from platform_app import flows
from sv_sdk.api.pagination import NewestFirstCursorPagination, RowSource, list_filters
from sv_sdk.api.permissions import MethodPermission
from sv_sdk.api.schema import PASSWORD_RULES, UNSTATED_RULES
from sv_sdk.api.serializers import StrictSerializer, problems, utc_text
from sv_sdk.db.replicas import lag_tolerant


class ManagedUserOutputSerializer(serializers.ModelSerializer):
    """The users API's shape of a user; its rows come from users_with_roles (see `listed`)."""

    # As stored: an address accepted at sign-up need not pass a stricter `format: email`.
    email = serializers.CharField()
    roles = RoleRefSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "email_verified",
            "name",
            "image",
            "is_active",
            "is_staff",
            "is_superuser",
            "last_login",
            "created_at",
            "updated_at",
            "roles",
        ]


_USER_FIELDS = tuple(f for f in ManagedUserOutputSerializer.Meta.fields if f != "roles")
# The datetime columns, the only ones not already in JSON's terms.
_DATETIMES = tuple(
    name
    for name, field in ManagedUserOutputSerializer().fields.items()
    if isinstance(field, serializers.DateTimeField)
)


def listed(**query) -> list[dict]:
    """Users as the API writes them: users_with_roles's rows, datetimes as utc_text writes them.

    On the busiest list a serializer per row cost more than the query; the
    other columns and the roles are already what ManagedUserOutputSerializer
    would write, so only the datetimes are formatted, the user's and the
    roles' `expires_at`, as every response writes them (utc_text).
    """
    users = users_with_roles(fields=_USER_FIELDS, **query)
    for user in users:
        for name in _DATETIMES:
            if user[name] is not None:
                user[name] = utc_text(user[name])
        for role in user["roles"]:
            if role["expires_at"] is not None:
                role["expires_at"] = utc_text(role["expires_at"])
    return users


class UserPagination(NewestFirstCursorPagination):
    pass


def _user_or_404(user_id: str) -> User:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise Http404
    return user


def _output(user_id: str) -> dict:
    found = listed(user_id=user_id)
    if not found:
        raise Http404
    return found[0]


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
    @lag_tolerant
    def get(self, request):
        role = list_filters(self).get("role")
        paginator = self.pagination_class()
        # DRF's cursor logic over rows already shaped as the API writes them.
        page = paginator.paginate_queryset(
            RowSource(lambda **window: listed(role=role, **window)), request, view=self
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
        return Response(_output(user.pk), status=status.HTTP_201_CREATED)


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
        return Response(_output(user_id))

    @extend_schema(
        operation_id="users_update",
        description=IMAGE_RULE,
        extensions={UNSTATED_RULES: ["image"]},
        request=UpdateInputSerializer,
        responses={200: ManagedUserOutputSerializer, **problems(400, 401, 403, 404)},
    )
    def patch(self, request, user_id):
        user = _user_or_404(user_id)
        data = self.UpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        flows.user_update(user=user, actor=request.user, **data.validated_data)
        return Response(_output(user.pk))

    @extend_schema(operation_id="users_delete", responses={204: None, **problems(401, 403, 404)})
    def delete(self, request, user_id):
        user = _user_or_404(user_id)
        flows.user_offboard(user=user, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
