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


class InvalidCode(ApplicationError):
    status_code = 400
    code = "invalid_code"
    title = "Wrong code"
    default_detail = "The code is wrong, expired or already used."


class MfaAlreadyEnabled(Conflict):
    code = "mfa_already_enabled"
    title = "Already enabled"
    default_detail = "An authenticator app is enabled already; disable it first."


class MfaNotPending(Conflict):
    code = "mfa_not_pending"
    title = "Nothing to confirm"
    default_detail = "Start the authenticator enrolment first."


class MfaNotEnabled(Conflict):
    code = "mfa_not_enabled"
    title = "Not enabled"
    default_detail = "This second factor is not enabled."


class ReauthenticationRequired(ApplicationError):
    status_code = 403
    code = "reauthentication_required"
    title = "Reauthentication required"
    default_detail = (
        "This action needs a recent sign-in; confirm it at POST /api/v1/auth/mfa/reauthenticate."
    )


class MfaEnrollmentRequired(ApplicationError):
    status_code = 403
    code = "mfa_enrollment_required"
    title = "Second factor required"
    default_detail = "Your role requires a second factor: enrol one under /api/v1/auth/mfa/ first."


class PasskeyInvalid(ApplicationError):
    status_code = 400
    code = "passkey_invalid"
    title = "Passkey refused"
    default_detail = "The passkey response could not be verified."


class PasskeyCloned(PasskeyInvalid):
    code = "passkey_cloned"
    title = "Passkey refused"
    default_detail = (
        "The authenticator's signature counter went back: it may have been cloned, so it is "
        "refused."
    )
