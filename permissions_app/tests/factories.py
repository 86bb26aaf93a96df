"""Factories for users (through user_onboard) and roles (through role_create)."""

import factory

from auth_app.models import User
from permissions_app import services
from permissions_app.models import Role
from platform_app.flows import user_onboard


class UserFactory(factory.Factory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    is_staff = False
    is_superuser = False

    @classmethod
    def _create(cls, model_class, **kwargs):
        return user_onboard(**kwargs)


class RoleFactory(factory.Factory):
    class Meta:
        model = Role

    name = factory.Sequence(lambda n: f"role-{n}")
    description = ""
    permissions = factory.List([])

    @classmethod
    def _create(cls, model_class, **kwargs):
        return services.role_create(**kwargs)
