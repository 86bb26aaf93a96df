"""Roles, made through role_create."""

import factory

from permissions_app import services
from permissions_app.models import Role


class RoleFactory(factory.Factory):
    class Meta:
        model = Role

    name = factory.Sequence(lambda n: f"role-{n}")
    description = ""
    permissions = factory.List([])

    @classmethod
    def _create(cls, model_class, **kwargs):
        return services.role_create(**kwargs)
