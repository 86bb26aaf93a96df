"""Authentication backend: email (case-insensitive) and password."""

from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Django's password check, looking users up by email without regard to case.

    Permissions come from roles (permissions_app), not from Django's
    per-user/group permission tables, which this user model does not have.
    """

    def _get_permissions(self, user_obj, obj, from_name):
        return set()
