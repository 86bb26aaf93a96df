"""Identity errors, each with its HTTP status and stable code."""

from sv_sdk.errors import ApplicationError, Conflict


class EmailTaken(Conflict):
    code = "email_taken"
    title = "Email already registered"
    default_detail = "A user with this email address already exists."


class InvalidCredentials(ApplicationError):
    status_code = 401
    code = "invalid_credentials"
    title = "Invalid credentials"
    default_detail = "The email or the password is wrong."


class AccountDisabled(ApplicationError):
    status_code = 403
    code = "account_disabled"
    title = "Account disabled"
    default_detail = "This account is deactivated or banned."


class TokenInvalid(ApplicationError):
    status_code = 400
    code = "token_invalid"
    title = "Invalid token"
    default_detail = "The token is unknown, expired or already used."


class InvalidPassword(ApplicationError):
    status_code = 400
    code = "invalid_password"
    title = "Wrong password"
    default_detail = "The current password is wrong."


class RateLimited(ApplicationError):
    status_code = 429
    code = "rate_limited"
    title = "Too many requests"
    default_detail = "Too many requests; try again later."

    def __init__(self, retry_after: int, detail: str | None = None):
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}
