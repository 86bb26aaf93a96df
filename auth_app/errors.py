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


class UnknownProvider(ApplicationError):
    status_code = 404
    code = "unknown_provider"
    title = "Unknown provider"
    default_detail = "No enabled sign-in provider has this name."


# Failures of a sign-in with a provider: (status, title, detail) by stable code. The
# browser callback redirects with the code; the API answers the same as a problem.
OAUTH_FAILURES = {
    "access_denied": (400, "Sign-in cancelled", "The provider says the sign-in was refused."),
    "invalid_state": (400, "Invalid state", "The sign-in attempt is unknown, expired, "
                      "already used, or was started in another browser."),
    "invalid_grant": (400, "Invalid code", "The provider refused the authorization code "
                      "(used already, expired, or the PKCE verifier does not match)."),
    "invalid_client": (502, "Provider refused the client", "The provider does not accept "
                       "this application's credentials."),
    "invalid_id_token": (400, "Invalid ID token", "The provider's ID token failed its checks."),
    "provider_error": (502, "Provider error", "The provider answered something unexpected."),
    "provider_unavailable": (503, "Provider unavailable",
                             "The provider did not answer in time; try again later."),
    "email_unverified": (403, "Email not verified", "The provider does not vouch for an "
                         "email address, so no account can be created or linked."),
    "account_exists": (409, "Account exists", "A user with this email exists. Sign in with "
                       "your password, then link this provider from your account "
                       "(POST /api/v1/auth/oauth/{provider}/link)."),
    "account_linked_elsewhere": (409, "Identity linked to another user",
                                 "This identity already belongs to another user."),
    "account_disabled": (403, "Account disabled", "This account is deactivated or banned."),
    "rate_limited": (429, "Too many requests", "Too many sign-ins; try again later."),
    "reconsent_needed": (409, "Consent needed again", "The provider refused the refresh "
                         "token: sign in with this provider again."),
}  # fmt: skip


class OAuthFailed(ApplicationError):
    """A sign-in with a provider failed; `code` is one of OAUTH_FAILURES.

    `callback_url`, when known, is where the browser goes back with the code.
    """

    def __init__(self, code: str, *, callback_url: str | None = None):
        self.status_code, self.title, detail = OAUTH_FAILURES[code]
        self.code = code
        self.callback_url = callback_url
        super().__init__(detail)


class ReconsentNeeded(OAuthFailed):
    def __init__(self):
        super().__init__("reconsent_needed")


class LastCredential(ApplicationError):
    status_code = 400
    code = "last_credential"
    title = "Last way to sign in"
    default_detail = (
        "This is the user's last way to sign in (no password and no other linked account)."
    )


class AccountNotFound(ApplicationError):
    status_code = 404
    code = "not_found"
    title = "Not found"
    default_detail = "No such linked account."
