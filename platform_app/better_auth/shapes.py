"""better-auth's JSON shapes of a user, a session and an account: camelCase, ISO 8601 dates in
milliseconds."""

from datetime import UTC, datetime

from auth_app.models import Account, Session, User


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_json(user: User) -> dict:
    return {
        "id": user.pk,
        "email": user.email,
        "name": user.name,
        "image": user.image or None,
        "emailVerified": user.email_verified,
        "createdAt": iso(user.created_at),
        "updatedAt": iso(user.updated_at),
    }


def session_json(session: Session) -> dict:
    """A session as better-auth lists it, but `token` is an opaque handle (the session's id):
    tokens are stored hashed, so no list can show one. revoke-session accepts the handle."""
    return {
        "id": session.pk,
        "token": session.pk,
        "userId": session.user_id,
        "expiresAt": iso(session.expires_at),
        "createdAt": iso(session.created_at),
        "updatedAt": iso(session.updated_at),
        "ipAddress": session.ip_address or "",
        "userAgent": session.user_agent,
    }


def credential_account_json(user: User) -> dict:
    """The password as better-auth lists it: an account of provider `credential`.

    sv_sdk keeps the password hash on the user, so this entry is made up from it.
    """
    return {
        "id": user.pk,
        "providerId": "credential",
        "accountId": user.pk,
        "userId": user.pk,
        "scopes": [],
        "createdAt": iso(user.created_at),
        "updatedAt": iso(user.updated_at),
    }


def account_json(account: Account) -> dict:
    return {
        "id": account.pk,
        "providerId": account.provider_id,
        "accountId": account.account_id,
        "userId": account.user_id,
        "scopes": account.scope.replace(",", " ").split(),
        "createdAt": iso(account.created_at),
        "updatedAt": iso(account.updated_at),
    }
