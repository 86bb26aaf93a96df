"""Encryption of secret columns at rest, with the Fernet keys in SV_ENCRYPTION_KEYS."""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["InvalidToken", "decrypt", "development_key", "encrypt", "keys_from", "rotate"]


class EncryptionKeyError(ImproperlyConfigured):
    """SV_ENCRYPTION_KEYS is empty or holds something that is not a Fernet key."""


class DecryptionError(Exception):
    """A stored value that none of the configured keys decrypts."""


def development_key(secret_key: str) -> str:
    """Derive a Fernet key from SECRET_KEY, for development without SV_ENCRYPTION_KEYS.

    HKDF with a purpose label, so the derived key says nothing about SECRET_KEY and
    differs from anything else derived from it.
    """
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"sv_sdk encryption key v1"
    ).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw).decode()


@functools.cache
def keys_from(keys: tuple[str, ...]) -> MultiFernet:
    """A MultiFernet over `keys`: the first encrypts, every one decrypts."""
    if not keys:
        raise EncryptionKeyError("SV_ENCRYPTION_KEYS holds no key")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            # The position, never the key: this message reaches logs and terminals.
            raise EncryptionKeyError(
                f"SV_ENCRYPTION_KEYS: key {position} of {len(keys)} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from None
    return MultiFernet(fernets)


def _keys() -> MultiFernet:
    # Looked up on every call (and cached per key list) so override_settings works.
    return keys_from(tuple(settings.SV_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _keys().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with whichever configured key fits; raise InvalidToken if none does."""
    return _keys().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """Re-encrypt `token` with the first key; raise InvalidToken if no key decrypts it."""
    return _keys().rotate(token.encode()).decode()
