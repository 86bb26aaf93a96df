"""Users, made the way the product makes them: through onboarding (default role, cache row)."""

import factory

from auth_app.models import User
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
