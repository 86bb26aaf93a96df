"""Identity errors."""

from sv_sdk.errors import Conflict


class EmailTaken(Conflict):
    code = "email_taken"
    title = "Email already registered"
    default_detail = "A user with this email address already exists."
