"""The email API under /api/v1/email/: one class per operation."""

from django.template import TemplateSyntaxError
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.models import User
from email_app import selectors, services
from email_app.errors import (
    TemplateExists,
    TemplateNotFound,
    TemplateRenderFailed,
    TemplateReserved,
    TemplateVariableMissing,
    UnsubscribeTokenInvalid,
)
from email_app.models import ESSENTIAL_CATEGORIES, Category, EmailSend
from email_app.rendering import check_syntax, render_preview, variables
from sv_sdk.api.pagination import CursorPagination, NewestFirstCursorPagination, list_filters
from sv_sdk.api.permissions import HasPermission
from sv_sdk.api.schema import UNSTATED_RULES
from sv_sdk.api.serializers import StrictSerializer, problems
from sv_sdk.db.replicas import lag_tolerant
from sv_sdk.errors import ValidationFailed

from .serializers import (
    PreferencesOutputSerializer,
    PreviewOutputSerializer,
    SendDetailOutputSerializer,
    SendOutputSerializer,
    TemplateOutputSerializer,
    UnsubscribeOutputSerializer,
)

SOURCE = {"trim_whitespace": False, "max_length": 100_000}


# What the schema cannot say of an object of any depth: the 400 names `context`.
CONTEXT_RULE = " No key or string anywhere in `context` may hold a NUL character."


class ContextField(serializers.DictField):
    """A JSON object of template variables; PostgreSQL text cannot hold a NUL character."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str) and "\x00" in item:
                raise serializers.ValidationError("Null characters are not allowed.")
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        return value


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            category: {"const": True} if category in ESSENTIAL_CATEGORIES else {"type": "boolean"}
            for category in Category.values
        },
        "additionalProperties": False,
    }
)
class PreferenceChoicesField(serializers.DictField):
    """Category to subscribed; essential categories can only be `true`."""


TEMPLATE_SYNTAX_RULE = (
    "`subject`, `text_body` and `html_body` must be valid Django template source: a 400"
    " naming the field otherwise."
)


class ReadWriteApi(APIView):
    """Reads need `read_permission`, every other method `write_permission`."""

    read_permission = "email:read"
    write_permission = "email:write"

    def get_permissions(self):
        read = self.request.method in ("GET", "HEAD", "OPTIONS")
        return [HasPermission(self.read_permission if read else self.write_permission)()]


class TemplatePagination(CursorPagination):
    ordering = ("key", "locale")


class EmailTemplateListApi(ReadWriteApi):
    pagination_class = TemplatePagination

    class FilterSerializer(serializers.Serializer):
        key = serializers.CharField(max_length=100, required=False)
        locale = serializers.CharField(max_length=20, required=False)

    filter_serializer = FilterSerializer

    class InputSerializer(StrictSerializer):
        key = serializers.SlugField(max_length=100)
        locale = serializers.CharField(max_length=20, default="en")
        subject = serializers.CharField(max_length=255)
        text_body = serializers.CharField(**SOURCE)
        html_body = serializers.CharField(allow_blank=True, default="", **SOURCE)
        description = serializers.CharField(allow_blank=True, default="", max_length=2000)
        is_active = serializers.BooleanField(default=True)

    @extend_schema(
        operation_id="email_templates_list",
        parameters=[FilterSerializer],
        responses={200: TemplateOutputSerializer(many=True), **problems(400, 401, 403)},
    )
    @lag_tolerant
    def get(self, request):
        templates = selectors.template_list(**list_filters(self))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(templates, request, view=self)
        return paginator.get_paginated_response(TemplateOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="email_templates_create",
        description=TEMPLATE_SYNTAX_RULE,
        extensions={UNSTATED_RULES: ["subject", "text_body", "html_body"]},
        request=InputSerializer,
        responses={201: TemplateOutputSerializer, **problems(400, 401, 403, TemplateExists)},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.template_create(**data.validated_data, actor=request.user)
        return Response(TemplateOutputSerializer(template).data, status=status.HTTP_201_CREATED)


class EmailTemplateDetailApi(ReadWriteApi):
    class InputSerializer(StrictSerializer):
        subject = serializers.CharField(max_length=255, required=False)
        text_body = serializers.CharField(required=False, **SOURCE)
        html_body = serializers.CharField(required=False, allow_blank=True, **SOURCE)
        description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
        is_active = serializers.BooleanField(required=False)

    @extend_schema(
        operation_id="email_templates_get",
        responses={200: TemplateOutputSerializer, **problems(401, 403, 404)},
    )
    def get(self, request, template_id):
        template = selectors.template_by_id(template_id)
        return Response(TemplateOutputSerializer(template).data)

    @extend_schema(
        operation_id="email_templates_update",
        description=TEMPLATE_SYNTAX_RULE,
        extensions={UNSTATED_RULES: ["subject", "text_body", "html_body"]},
        request=InputSerializer,
        responses={200: TemplateOutputSerializer, **problems(400, 401, 403, 404)},
    )
    def patch(self, request, template_id):
        template = selectors.template_by_id(template_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.template_update(
            template=template, actor=request.user, **data.validated_data
        )
        return Response(TemplateOutputSerializer(template).data)


class EmailTemplatePreviewApi(ReadWriteApi):
    """Render a template (or unsaved edits of it) with a context; nothing is stored or sent."""

    write_permission = "email:read"  # a POST only because the context is a body

    class InputSerializer(StrictSerializer):
        context = ContextField(default=dict)
        subject = serializers.CharField(max_length=255, required=False)
        text_body = serializers.CharField(required=False, **SOURCE)
        html_body = serializers.CharField(required=False, allow_blank=True, **SOURCE)

    @extend_schema(
        operation_id="email_templates_preview",
        description=TEMPLATE_SYNTAX_RULE + " The context must hold every variable the"
        " template uses (400 `template_variable_missing`), and values its filters can take"
        " (400 `template_render_failed`)." + CONTEXT_RULE,
        extensions={
            UNSTATED_RULES: [
                "context",
                "template",
                "template_variable_missing",
                "template_render_failed",
            ]
        },
        request=InputSerializer,
        responses={
            200: PreviewOutputSerializer,
            **problems(TemplateVariableMissing, TemplateRenderFailed, 401, 403, 404),
        },
    )
    def post(self, request, template_id):
        template = selectors.template_by_id(template_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sources = {
            field: data.validated_data.get(field, getattr(template, field))
            for field in ("subject", "text_body", "html_body")
        }
        try:
            for source in sources.values():
                check_syntax(source)
            names = variables(*sources.values())
            (subject, text, html), missing = render_preview(
                **sources, context=data.validated_data["context"]
            )
        except TemplateSyntaxError as exc:
            raise ValidationFailed(errors={"template": [f"Template syntax error: {exc}"]}) from None
        if missing:
            raise TemplateVariableMissing(
                f"The context lacks {len(missing)} variable(s) the template uses.",
                errors={"context": [f"Missing variable {name!r}." for name in sorted(missing)]},
            )
        body = {"subject": subject, "text": text, "html": html, "variables": names}
        return Response(PreviewOutputSerializer(body).data)


class EmailSendListApi(APIView):
    permission_classes = [HasPermission("email:read")]
    pagination_class = NewestFirstCursorPagination

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=EmailSend.Status.choices, required=False)
        user = serializers.CharField(max_length=36, required=False)
        template = serializers.CharField(max_length=100, required=False)
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)

    filter_serializer = FilterSerializer

    @extend_schema(
        operation_id="email_sends_list",
        parameters=[FilterSerializer],
        responses={200: SendOutputSerializer(many=True), **problems(400, 401, 403)},
    )
    @lag_tolerant
    def get(self, request):
        data = list_filters(self)
        sends = selectors.send_list(
            status=data.get("status"),
            user_id=data.get("user"),
            template=data.get("template"),
            since=data.get("since"),
            until=data.get("until"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(sends, request, view=self)
        return paginator.get_paginated_response(SendOutputSerializer(page, many=True).data)


class EmailSendDetailApi(APIView):
    permission_classes = [HasPermission("email:read")]

    @extend_schema(
        operation_id="email_sends_get",
        responses={200: SendDetailOutputSerializer, **problems(401, 403, 404)},
    )
    def get(self, request, send_id):
        return Response(SendDetailOutputSerializer(selectors.send_by_id(send_id)).data)


class EmailSendApi(APIView):
    """Queue one email from a template; delivery happens in the background."""

    permission_classes = [HasPermission("email:send")]

    class InputSerializer(StrictSerializer):
        to = serializers.EmailField(max_length=254)
        template = serializers.SlugField(max_length=100)
        locale = serializers.CharField(max_length=20, required=False)
        category = serializers.ChoiceField(choices=Category.choices)
        context = ContextField(default=dict)
        user_id = serializers.CharField(max_length=36, required=False)
        idempotency_key = serializers.CharField(max_length=255, required=False)

    @extend_schema(
        operation_id="email_send",
        description="`user_id` must name an existing user (a 400 naming it otherwise); the"
        " template, by key and locale, must exist (404 `template_not_found`), and the context"
        " must hold every variable it uses (400 `template_variable_missing`) and values its"
        " filters can take (400 `template_render_failed`). Security templates are sent by the"
        " account flows only (403 `template_reserved`)." + CONTEXT_RULE,
        extensions={
            UNSTATED_RULES: [
                "context",
                "user_id",
                "template_variable_missing",
                "template_render_failed",
            ]
        },
        request=InputSerializer,
        responses={
            202: SendOutputSerializer,
            **problems(
                400,
                TemplateVariableMissing,
                TemplateRenderFailed,
                401,
                403,
                TemplateReserved,
                TemplateNotFound,
            ),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = None
        if "user_id" in values:
            user = User.objects.filter(pk=values["user_id"]).first()
            if user is None:
                raise ValidationFailed(errors={"user_id": ["No such user."]})
        send = services.email_queue(
            to_email=values["to"],
            category=values["category"],
            template_key=values["template"],
            locale=values.get("locale"),
            context=values["context"],
            user=user,
            idempotency_key=values.get("idempotency_key")
            or request.headers.get("Idempotency-Key")
            or None,
            actor=request.user,
        )
        return Response(SendOutputSerializer(send).data, status=status.HTTP_202_ACCEPTED)


class EmailPreferencesApi(APIView):
    """The signed-in user's own choices per category."""

    permission_classes = [IsAuthenticated]

    class InputSerializer(StrictSerializer):
        preferences = PreferenceChoicesField(
            child=serializers.BooleanField(),
            help_text='Category to subscribed, e.g. {"marketing": false}; others stay as they are.',
        )

    @extend_schema(
        operation_id="email_preferences_get",
        responses={200: PreferencesOutputSerializer, **problems(401)},
    )
    def get(self, request):
        body = {"preferences": selectors.preferences_for_user(request.user)}
        return Response(PreferencesOutputSerializer(body).data)

    @extend_schema(
        operation_id="email_preferences_update",
        request=InputSerializer,
        responses={200: PreferencesOutputSerializer, **problems(400, 401)},
    )
    def put(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        choices = data.validated_data["preferences"]
        errors = {}
        for category, subscribed in choices.items():
            if category not in Category.values:
                errors[category] = ["Unknown email category."]
            elif category in ESSENTIAL_CATEGORIES and not subscribed:
                errors[category] = ["Security and account emails are always sent."]
        if errors:
            # Checked first, so a bad entry changes nothing at all.
            raise ValidationFailed(errors=errors)
        for category, subscribed in choices.items():
            if category not in ESSENTIAL_CATEGORIES:
                services.preference_set(
                    user=request.user, category=category, subscribed=subscribed, actor=request.user
                )
        body = {"preferences": selectors.preferences_for_user(request.user)}
        return Response(PreferencesOutputSerializer(body).data)


UNSUBSCRIBE_RULE = (
    "The token must be one from an unsubscribe link we sent: 400 `token_invalid` otherwise."
)


class EmailUnsubscribeApi(APIView):
    """The List-Unsubscribe target: POST unsubscribes (RFC 8058), GET only checks the link.

    GET changes nothing because link scanners and previews fetch links by
    themselves; a mail client's one-click unsubscribe is a POST. The token is a
    path segment, which the log filter redacts (sv_sdk.logs).
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    # RFC 8058's POST body is the form "List-Unsubscribe=One-Click"; it is never read.
    parser_classes = [FormParser]

    def _token(self, request, token: str) -> str:
        return token

    @extend_schema(
        operation_id="email_unsubscribe_check",
        description=UNSUBSCRIBE_RULE,
        extensions={UNSTATED_RULES: ["token_invalid"]},
        responses={200: UnsubscribeOutputSerializer, **problems(UnsubscribeTokenInvalid)},
    )
    def get(self, request, token: str = ""):
        user, category = selectors.unsubscribe_subject(token=self._token(request, token))
        current = {p["category"]: p["subscribed"] for p in selectors.preferences_for_user(user)}
        body = {"category": category, "subscribed": current[category]}
        return Response(UnsubscribeOutputSerializer(body).data)

    @extend_schema(
        operation_id="email_unsubscribe",
        description=UNSUBSCRIBE_RULE,
        extensions={UNSTATED_RULES: ["token_invalid"]},
        request=None,
        responses={200: UnsubscribeOutputSerializer, **problems(UnsubscribeTokenInvalid)},
    )
    def post(self, request, token: str = ""):
        _user, category = services.email_unsubscribe(token=self._token(request, token))
        return Response(
            UnsubscribeOutputSerializer({"category": category, "subscribed": False}).data
        )


@extend_schema(exclude=True)
class EmailUnsubscribeQueryApi(EmailUnsubscribeApi):
    """`email/unsubscribe?token=`, the link of emails sent before the token moved into the
    path: kept so that they still unsubscribe. Undocumented; new mail never uses it."""

    def _token(self, request, token: str) -> str:
        return request.query_params.get("token", "")
