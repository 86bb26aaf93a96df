"""Email addresses: the one normal form users are stored with, and the one key they match by."""

import functools
import unicodedata

import idna
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from sv_sdk.errors import ValidationFailed


# Cached: user_build normalises an address, then email_key normalises it again.
@functools.lru_cache(maxsize=128)
def email_normalize(email: str) -> str:
    """`email` in the form it is stored and mailed to; ValidationFailed if it has none.

    NFKC first, so compatibility characters cannot spell a second account for one
    mailbox (`alice@sec.test` in fullwidth letters is `alice@sec.test`); the domain as IDNA ASCII
    (UTS 46, so `Bücher.example` is `xn--bcher-kva.example`), lower case. The
    local part keeps its letter case but must be ASCII: Django's validator lets
    a few non-ASCII letters through because they match ASCII ones ignoring case
    (U+0130, U+0131, U+017F, U+212A), and those are exactly the ones Python and
    PostgreSQL fold differently.
    """
    email = unicodedata.normalize("NFKC", (email or "").strip())
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise _invalid("Enter a valid email address.")
    if not local.isascii():
        raise _invalid("The part before @ must be ASCII letters, digits and punctuation.")
    try:
        domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise _invalid("The domain is not a valid internationalised domain name.") from None
    email = f"{local}@{domain.lower()}"
    try:
        validate_email(email)
    except ValidationError as exc:
        raise _invalid(*exc.messages) from None
    return email


def email_key(email: str) -> str:
    """What two addresses must share to be the same account: the normal form, lower case.

    The one comparison rule: the unique constraint is on this value (users.email_key),
    and every look-up (sign-in, forgot-password, the admin, the commands) computes it
    with this function. The normal form is ASCII, so lower() means the same everywhere.
    """
    return email_normalize(email).lower()


def _invalid(*messages: str) -> ValidationFailed:
    return ValidationFailed(errors={"email": list(messages)})
