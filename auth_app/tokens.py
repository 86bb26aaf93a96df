"""Opaque tokens: generated with `secrets`, stored only as SHA-256 hashes."""

import hashlib
import secrets


def token_generate() -> str:
    """Return a new URL-safe token of 256 bits."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # A fast hash is enough: tokens carry 256 bits of entropy, so there is
    # nothing to brute-force, and lookups by hash stay one index probe.
    return hashlib.sha256(token.encode()).hexdigest()
