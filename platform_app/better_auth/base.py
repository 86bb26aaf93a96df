"""What every /api/auth endpoint shares: its authentication, Origin check, errors and answers."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.models import Session
from sv_sdk.api.serializers import StrictSerializer

from .authentication import BetterAuthAuthentication
from .cookies import session_cookie_clear, session_cookie_set
from .errors import better_auth_exception_handler
from .origins import origin_check


class Input(StrictSerializer):
    """A better-auth request body: fields it names that sv_sdk has no use for are accepted and
    ignored (listed in `ignored`), anything else is refused."""

    ignored: tuple[str, ...] = ()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            data = {key: value for key, value in data.items() if key not in self.ignored}
        return super().to_internal_value(data)


@extend_schema(exclude=True)  # better-auth's own documentation describes these paths
class BetterAuthApi(APIView):
    """One better-auth endpoint: a signed-in caller unless `public`."""

    authentication_classes = [BetterAuthAuthentication]
    public = False

    def get_permissions(self):
        if self.public:
            return [AllowAny()]
        return super().get_permissions()

    def get_exception_handler(self):
        return better_auth_exception_handler

    def initial(self, request, *args, **kwargs):
        origin_check(request)
        super().initial(request, *args, **kwargs)

    def perform_authentication(self, request):
        if not self.public:
            return super().perform_authentication(request)
        try:
            request.user  # noqa: B018 (authenticates)
        except exceptions.AuthenticationFailed:
            # An ended session or a forged cookie is simply nobody here.
            pass

    def body(self, serializer_class) -> dict:
        data = serializer_class(data=self.request.data)
        data.is_valid(raise_exception=True)
        return data.validated_data

    @property
    def session(self) -> Session | None:
        return self.request.auth if isinstance(self.request.auth, Session) else None


def signed_in(request, body: dict, token: str) -> Response:
    """`body`, with the new session in the cookie and in set-auth-token."""
    response = Response(body)
    session_cookie_set(request, response, token)
    return response


def signed_out(request, body: dict) -> Response:
    response = Response(body)
    session_cookie_clear(request, response)
    return response


def status_true() -> Response:
    return Response({"status": True})
