"""better-auth's error body, `{"code": "UPPER_SNAKE", "message": "..."}`, from sv_sdk's errors.

Each sv_sdk error keeps its meaning; only its status and code are renamed where
better-auth's client or front ends look for a particular one.
"""

from rest_framework.response import Response

from sv_sdk.api.exceptions import problem_exception_handler
from sv_sdk.errors import ApplicationError

# sv_sdk code -> (status, better-auth code, message); other codes keep their status and
# are upper-cased.
TRANSLATED = {
    "email_taken": (
        422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", "User already exists. Use another email."
    ),
    "invalid_credentials": (401, "INVALID_EMAIL_OR_PASSWORD", "Invalid email or password"),
    "invalid_password": (400, "INVALID_PASSWORD", "Invalid password"),
    "token_invalid": (400, "INVALID_TOKEN", "Invalid token"),
    "not_authenticated": (401, "UNAUTHORIZED", "Unauthorized"),
    "rate_limited": (429, "TOO_MANY_REQUESTS", "Too many requests. Please try again later."),
    "reauthentication_required": (403, "SESSION_NOT_FRESH", "Session is not fresh"),
    "invalid_json": (400, "BODY_MUST_BE_AN_OBJECT", "Body must be an object"),
    "unknown_provider": (404, "PROVIDER_NOT_FOUND", "Provider not found"),
    "last_credential": (400, "FAILED_TO_UNLINK_LAST_ACCOUNT", "You can't unlink your last account"),
    "invalid_code": (401, "INVALID_CODE", "Invalid code"),
    "mfa_already_enabled": (400, "TOTP_ALREADY_ENABLED", "TOTP is already enabled"),
    "mfa_not_enabled": (400, "TWO_FACTOR_NOT_ENABLED", "Two factor isn't enabled"),
    "mfa_not_pending": (400, "TOTP_NOT_ENABLED", "TOTP not enabled"),
}  # fmt: skip


class BetterAuthError(ApplicationError):
    """A failure that exists only in this protocol (an origin, a redirect URL), with its code."""

    def __init__(self, status_code: int, code: str, message: str):
        self.status_code = status_code
        self.code = code
        super().__init__(message)


def error_response(status_code: int, code: str, message: str, headers=None) -> Response:
    return Response({"code": code, "message": message}, status=status_code, headers=headers)


def better_auth_exception_handler(exc, context):
    """The project's problem handler (so rollbacks and logging stay one), re-shaped."""
    if isinstance(exc, BetterAuthError):
        return error_response(exc.status_code, exc.code, exc.detail)
    problem = problem_exception_handler(exc, context)
    if problem is None:
        return None
    body = problem.data
    status_code, code, message = TRANSLATED.get(
        body["code"], (problem.status_code, body["code"].upper(), body["detail"])
    )
    if body.get("errors"):
        # Name the first field as better-auth's validation messages do.
        field, messages = next(iter(body["errors"].items()))
        message = f"[body.{field}] {messages[0]}"
    headers = {}
    if "Retry-After" in problem:
        # better-auth's client reads X-Retry-After.
        headers = {"Retry-After": problem["Retry-After"], "X-Retry-After": problem["Retry-After"]}
    return error_response(status_code, code, message, headers)
