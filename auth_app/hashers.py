"""Password hashers: the preferred Argon2id (docs/decisions.md, issue 20), and hashes imported
from better-auth, verified as they are and replaced at the next sign-in."""

import hashlib
import secrets
import unicodedata

from django.contrib.auth.hashers import Argon2PasswordHasher, BasePasswordHasher, mask_hash
from django.utils.crypto import constant_time_compare


class Argon2idPasswordHasher(Argon2PasswordHasher):
    """Argon2id with 46 MiB, one pass and one lane: the first row of OWASP's table.

    The algorithm name stays Django's "argon2", so a hash made with other parameters
    (Django's default 100 MiB, t=2, p=8) still verifies, and must_update tells the
    sign-in to store a new one with these.
    """

    memory_cost = 46 * 1024  # KiB
    time_cost = 1
    parallelism = 1


# better-auth's fixed scrypt parameters (its @better-auth/utils/password, 1.x).
SCRYPT_N = 16384
SCRYPT_R = 16
SCRYPT_P = 1
SCRYPT_DKLEN = 64
# scrypt needs 128 * N * r bytes (32 MiB here) plus a little; OpenSSL's default cap is 32 MiB.
_SCRYPT_MAXMEM = 2 * 128 * SCRYPT_N * SCRYPT_R


class BetterAuthScryptPasswordHasher(BasePasswordHasher):
    """better-auth's `salt:key` scrypt hashes, stored as `better_auth_scrypt$<salt>$<key>`.

    better-auth NFKC-normalises the password and uses the salt's hex text itself (not the
    bytes it spells) as the scrypt salt; the key is 64 bytes in hex. Only imported users
    hold such a hash: the hasher is listed after the preferred one, so Django's
    check_password rehashes to that one at the first successful sign-in.
    """

    algorithm = "better_auth_scrypt"

    def salt(self):
        # What better-auth makes: 16 random bytes, in hex.
        return secrets.token_hex(16)

    def encode(self, password, salt):
        self._check_encode_args(password, salt)
        key = hashlib.scrypt(
            unicodedata.normalize("NFKC", password).encode(),
            salt=salt.encode(),
            n=SCRYPT_N,
            r=SCRYPT_R,
            p=SCRYPT_P,
            dklen=SCRYPT_DKLEN,
            maxmem=_SCRYPT_MAXMEM,
        )
        return f"{self.algorithm}${salt}${key.hex()}"

    def decode(self, encoded):
        algorithm, salt, key = encoded.split("$", 2)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "salt": salt, "hash": key}

    def verify(self, password, encoded):
        decoded = self.decode(encoded)
        return constant_time_compare(encoded, self.encode(password, decoded["salt"]))

    def safe_summary(self, encoded):
        decoded = self.decode(encoded)
        return {
            "algorithm": decoded["algorithm"],
            "salt": mask_hash(decoded["salt"], show=2),
            "hash": mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded):
        # Its parameters never change; moving to the preferred hasher is Django's own step.
        return False

    def harden_runtime(self, password, encoded):
        pass


def better_auth_password(stored: str) -> str | None:
    """better-auth's stored `salt:key` as this hasher's encoded form; None if it is not one."""
    salt, sep, key = (stored or "").partition(":")
    if not sep or not _is_hex(salt) or not _is_hex(key) or len(key) != 2 * SCRYPT_DKLEN:
        return None
    # The salt is scrypt's input as text: its letter case must stay as stored.
    return f"{BetterAuthScryptPasswordHasher.algorithm}${salt}${key.lower()}"


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)
