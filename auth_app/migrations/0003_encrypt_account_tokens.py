"""Encrypt the provider tokens of linked accounts at rest, existing rows included."""

from django.db import migrations

import sv_sdk.db.fields
from sv_sdk import crypto


def _convert(schema_editor, convert) -> None:
    # Raw SQL: the field classes would encrypt or decrypt on their own, and this step must
    # see the stored text exactly as it is.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            'SELECT id, access_token, refresh_token, id_token FROM "auth"."accounts"'
            " ORDER BY id FOR UPDATE"
        )
        for account_id, *values in cursor.fetchall():
            converted = [convert(value) if value else value for value in values]
            if converted != values:
                cursor.execute(
                    'UPDATE "auth"."accounts"'
                    " SET access_token = %s, refresh_token = %s, id_token = %s WHERE id = %s",
                    [*converted, account_id],
                )


def _encrypt_plaintext(value: str) -> str:
    try:
        crypto.decrypt(value)
    except crypto.InvalidToken:
        return crypto.encrypt(value)
    return value  # already a token under one of the keys


def _decrypt_token(value: str) -> str:
    try:
        return crypto.decrypt(value)
    except crypto.InvalidToken:
        return value  # never encrypted


def encrypt_tokens(apps, schema_editor):
    _convert(schema_editor, _encrypt_plaintext)


def decrypt_tokens(apps, schema_editor):
    _convert(schema_editor, _decrypt_token)


class Migration(migrations.Migration):
    dependencies = [
        ("auth_app", "0002_rate_limits"),
    ]

    operations = [
        migrations.AlterField(
            model_name="account",
            name="access_token",
            field=sv_sdk.db.fields.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="account",
            name="refresh_token",
            field=sv_sdk.db.fields.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="account",
            name="id_token",
            field=sv_sdk.db.fields.EncryptedTextField(blank=True),
        ),
        migrations.RunPython(encrypt_tokens, decrypt_tokens),
    ]
