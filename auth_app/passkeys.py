"""Passkeys (WebAuthn, through py_webauthn): registration, assertion, server-side challenges."""

import json
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url, parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.parse_authentication_credential_json import (
    parse_authentication_credential_json,
)
from webauthn.helpers.parse_registration_credential_json import (
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from audit_app.services import audit_record

from . import mfa
from .errors import PasskeyCloned, PasskeyInvalid
from .mfa import factor_enrolled, factor_removed, mfa_enabled, reauthentication_check
from .models import Passkey, PasskeyChallenge, Session, User
from .tokens import token_hash

Purpose = PasskeyChallenge.Purpose


def _challenge_store(*, challenge: bytes, purpose: str, user: User | None) -> None:
    PasskeyChallenge.objects.create(
        user=user,
        purpose=purpose,
        challenge_hash=token_hash(bytes_to_base64url(challenge)),
        expires_at=mfa.mfa_now() + timedelta(seconds=settings.SV_WEBAUTHN_CHALLENGE_TTL),
    )


def _challenge_consume(parsed, *, purpose: str, user: User | None) -> bytes:
    """The challenge the client answered in `parsed` (see _parse), used once; PasskeyInvalid if
    it is not ours, expired, used, of another purpose, or issued for someone else."""
    try:
        challenge = parse_client_data_json(parsed.response.client_data_json).challenge
    except Exception:
        raise PasskeyInvalid("The client data is malformed.") from None
    rows = PasskeyChallenge.objects.filter(
        challenge_hash=token_hash(bytes_to_base64url(challenge)),
        purpose=purpose,
        consumed_at__isnull=True,
        expires_at__gt=mfa.mfa_now(),
    )
    if purpose == Purpose.REGISTER or user is not None:
        rows = rows.filter(user=user)
    if not rows.update(consumed_at=mfa.mfa_now()):
        raise PasskeyInvalid("The challenge is unknown, expired or already used.")
    return challenge


def _parse(parse, credential: dict, malformed: str):
    """The browser's WebAuthn JSON through py_webauthn's `parse`; PasskeyInvalid(`malformed`)
    for anything it cannot read."""
    try:
        return parse(credential)
    except (WebAuthnException, ValueError, TypeError, KeyError):
        raise PasskeyInvalid(malformed) from None


def _expected() -> dict:
    """What a registration or an assertion must answer to: this relying party, one of its
    origins, and a verified user."""
    return {
        "expected_rp_id": settings.SV_WEBAUTHN_RP_ID,
        "expected_origin": settings.SV_WEBAUTHN_ORIGINS,
        "require_user_verification": True,
    }


def _options_json(options) -> dict:
    return json.loads(options_to_json(options))


def passkey_registration_options(*, user: User) -> dict:
    """Options for navigator.credentials.create(): a discoverable credential, user verified."""
    options = generate_registration_options(
        rp_id=settings.SV_WEBAUTHN_RP_ID,
        rp_name=settings.SV_WEBAUTHN_RP_NAME,
        user_id=user.pk.encode(),
        user_name=user.email,
        user_display_name=user.get_full_name(),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(key.credential_id))
            for key in Passkey.objects.filter(user=user)
        ],
    )
    _challenge_store(challenge=options.challenge, purpose=Purpose.REGISTER, user=user)
    return _options_json(options)


def passkey_register(*, user: User, credential: dict, name: str) -> tuple[Passkey, list[str]]:
    """Verify a registration response; store the passkey. Returns it and, when it is the
    user's first second factor, their new recovery codes (else an empty list)."""
    parsed = _parse(
        parse_registration_credential_json, credential, "The registration response is malformed."
    )
    with transaction.atomic():
        challenge = _challenge_consume(parsed, purpose=Purpose.REGISTER, user=user)
        try:
            verified = verify_registration_response(
                credential=parsed, expected_challenge=challenge, **_expected()
            )
        except WebAuthnException as exc:
            raise PasskeyInvalid(f"The registration response was refused: {exc}") from None
        first = not mfa_enabled(user)
        credential_id = bytes_to_base64url(verified.credential_id)
        if Passkey.objects.filter(credential_id=credential_id).exists():
            raise PasskeyInvalid("This passkey is registered already.")
        passkey = Passkey.objects.create(
            user=user,
            name=(name or "Passkey").strip()[:100],
            credential_id=credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            device_type=verified.credential_device_type.value,
            backed_up=verified.credential_backed_up,
            transports=[str(t) for t in (credential.get("response") or {}).get("transports") or []][
                :10
            ],
        )
        codes = factor_enrolled(
            user=user,
            new_recovery_codes=first,
            target=passkey,
            metadata={"method": "passkey", "name": passkey.name},
        )
    return passkey, codes


def passkey_authentication_options(*, user: User | None) -> dict:
    """Options for navigator.credentials.get(): the user's passkeys as a second factor, or any
    discoverable one (user == None) for a passwordless sign-in."""
    allowed = (
        [
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(key.credential_id))
            for key in Passkey.objects.filter(user=user)
        ]
        if user is not None
        else []
    )
    options = generate_authentication_options(
        rp_id=settings.SV_WEBAUTHN_RP_ID,
        allow_credentials=allowed,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    _challenge_store(challenge=options.challenge, purpose=Purpose.AUTHENTICATE, user=user)
    return _options_json(options)


def passkey_authenticate(*, credential: dict, user: User | None) -> Passkey:
    """Verify an assertion of a passkey (of `user`, or of anyone for a passwordless sign-in).

    The challenge is used once whatever the outcome. A signature counter that does not move
    forward means a cloned authenticator (PasskeyCloned); a credential that claims a backup
    eligibility other than at registration is refused (WebAuthn §6.1.3).
    """
    parsed = _parse(parse_authentication_credential_json, credential, "The assertion is malformed.")
    with transaction.atomic():
        challenge = _challenge_consume(parsed, purpose=Purpose.AUTHENTICATE, user=user)
    passkey = (
        Passkey.objects.select_related("user")
        .filter(credential_id=bytes_to_base64url(parsed.raw_id))
        .first()
    )
    if passkey is None or (user is not None and passkey.user_id != user.pk):
        raise PasskeyInvalid("This passkey is not registered.")
    if parsed.response.user_handle and parsed.response.user_handle != passkey.user_id.encode():
        raise PasskeyInvalid("The passkey answered for another user.")
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            credential_public_key=bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
            **_expected(),
        )
    except WebAuthnException as exc:
        if "sign count" in str(exc):
            raise PasskeyCloned() from None
        raise PasskeyInvalid(f"The assertion was refused: {exc}") from None
    if verified.credential_device_type.value != passkey.device_type:
        raise PasskeyInvalid("The passkey's backup eligibility changed since registration.")
    with transaction.atomic():
        # Conditional on the counter read: two racing uses of one assertion cannot both pass.
        updated = Passkey.objects.filter(pk=passkey.pk, sign_count=passkey.sign_count).update(
            sign_count=verified.new_sign_count,
            backed_up=verified.credential_backed_up,
            last_used_at=mfa.mfa_now(),
        )
        if not updated:
            raise PasskeyCloned()
    passkey.refresh_from_db()
    return passkey


def passkey_rename(*, passkey: Passkey, name: str) -> Passkey:
    with transaction.atomic():
        passkey.name = name.strip()[:100] or passkey.name
        passkey.save(update_fields=["name"])
        audit_record(
            event_type="mfa.passkey_renamed",
            actor_id=passkey.user_id,
            user_id=passkey.user_id,
            target=passkey,
        )
    return passkey


def passkey_remove(*, passkey: Passkey, session: Session | None) -> None:
    """Remove one passkey (a fresh authentication required); audited as mfa.disabled."""
    reauthentication_check(session=session)
    user = passkey.user
    with transaction.atomic():
        passkey_id = passkey.pk
        passkey.delete()
        factor_removed(
            user=user, target_type="passkey", target_id=passkey_id, metadata={"method": "passkey"}
        )
