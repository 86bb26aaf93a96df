"""The password hasher: Argon2id at the parameters chosen in docs/decisions.md (issue 20)."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idPasswordHasher(Argon2PasswordHasher):
    """Argon2id with 46 MiB, one pass and one lane: the first row of OWASP's table.

    The algorithm name stays Django's "argon2", so a hash made with other parameters
    (Django's default 100 MiB, t=2, p=8) still verifies, and must_update tells the
    sign-in to store a new one with these.
    """

    memory_cost = 46 * 1024  # KiB
    time_cost = 1
    parallelism = 1
