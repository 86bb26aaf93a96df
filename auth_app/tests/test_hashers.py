"""The better-auth scrypt hasher: better-auth's own hashes verify, and only the right password."""

from django.contrib.auth.hashers import check_password, identify_hasher

from auth_app.hashers import BetterAuthScryptPasswordHasher, better_auth_password

# Written by better-auth 1.7.25's sign-up for the password "old password 123".
STORED = (
    "ddbe09a51cae0b201e412e452512ed10:53e9efcbc26df3d55fd2dcff77d78cb9a58ed27dea5c5dcdb6"
    "2025c03406cfdc4db9a550e162dfa664fb94927ce564460903fc5415b9d75b8893ac4f59707f15"
)


def test_a_hash_written_by_better_auth_verifies_its_password_only():
    encoded = better_auth_password(STORED)

    assert identify_hasher(encoded).algorithm == "better_auth_scrypt"
    assert check_password("old password 123", encoded)
    assert not check_password("old password 124", encoded)
    assert not check_password("OLD PASSWORD 123", encoded)


def test_compatibility_characters_are_normalised_as_better_auth_does():
    hasher = BetterAuthScryptPasswordHasher()
    encoded = hasher.encode("ﬁne Ｐａｓｓ", "00112233445566778899aabbccddeeff")  # noqa: RUF001

    assert hasher.verify("fine Pass", encoded)
    assert len(encoded) <= 255


def test_strings_that_are_not_better_auth_hashes_are_not_taken_for_one():
    for stored in ("", "nocolon", "zz:" + "0" * 128, "00ff:" + "0" * 127, "$2b$10$abc"):
        assert better_auth_password(stored) is None


def test_production_settings_verify_these_hashes_but_never_make_them():
    from sv_sdk.settings import base

    hashers = base.PASSWORD_HASHERS
    assert "auth_app.hashers.BetterAuthScryptPasswordHasher" in hashers[1:]
    assert hashers[0] == "auth_app.hashers.Argon2idPasswordHasher"
