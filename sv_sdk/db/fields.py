"""Field helpers shared by the apps' models."""

from django.conf import settings
from django.core import checks
from django.db import models

from sv_sdk import crypto
from sv_sdk.ids import new_id


def id_field() -> models.CharField:
    """The text primary key every table but audit_logs uses."""
    return models.CharField(primary_key=True, max_length=36, default=new_id, editable=False)


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token, encrypted with the first key of SV_ENCRYPTION_KEYS.

    The empty string is stored as is, so "no token" stays visible and cheap. Encryption
    is randomised: the column cannot be searched or filtered on its plaintext.
    """

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(value)

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        try:
            return crypto.decrypt(value)
        except crypto.InvalidToken:
            raise crypto.DecryptionError(
                f"cannot decrypt {self.model._meta.db_table}.{self.column}: no key in "
                "SV_ENCRYPTION_KEYS fits (was a key dropped before rotate_encryption_keys ran?)"
            ) from None


@checks.register(checks.Tags.security)
def check_encryption_keys(app_configs, **kwargs):
    """Refuse malformed SV_ENCRYPTION_KEYS at startup rather than at the first secret read."""
    try:
        crypto.keys_from(tuple(settings.SV_ENCRYPTION_KEYS))
    except crypto.EncryptionKeyError as exc:
        return [checks.Error(str(exc), id="sv_sdk.E001")]
    return []
