"""Django's changepassword, finding the user by any spelling of their email and changing the
password through the service (audited; their unused reset tokens end)."""

import getpass

from django.contrib.auth.management.commands import changepassword
from django.core.management.base import CommandError

from auth_app.models import User
from auth_app.services import password_prepare, user_password_set
from sv_sdk.errors import ValidationFailed

_TRIES = 3


class Command(changepassword.Command):
    help = "Change a user's password (audited; their unused password-reset links stop working)."

    def handle(self, *args, username, database, **options):
        email = username or getpass.getuser()
        user = User.objects.using(database).with_email(email).first()
        if user is None:
            raise CommandError(f"No user with the email {email!r}.")
        self.stdout.write(f"Changing the password of {user.email}")
        for _attempt in range(_TRIES):
            password = self._get_pass()
            if self._get_pass("Password (again): ") != password:
                self.stdout.write("Passwords do not match. Please try again.")
                continue
            try:
                password_hash = password_prepare(user=user, password=password)
            except ValidationFailed as exc:
                self.stderr.write("\n".join(exc.errors["password"]))
                continue
            user_password_set(
                user=user, password_hash=password_hash, event_type="user.password_changed"
            )
            return f"Password changed for {user.email}."
        raise CommandError(f"No password change for {user.email} after {_TRIES} attempts.")
