"""Field helpers shared by the apps' models."""

from django.db import models

from sv_sdk.ids import new_id


def id_field() -> models.CharField:
    """The text primary key every table but audit_logs uses."""
    return models.CharField(primary_key=True, max_length=36, default=new_id, editable=False)
