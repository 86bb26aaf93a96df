"""Errors of the audit domain."""

from sv_sdk.errors import ApplicationError


class CheckpointDelayed(ApplicationError):
    status_code = 503
    code = "checkpoint_delayed"
    title = "Checkpoint delayed"
    default_detail = "Transactions that may still add audit rows are open; try again later."


class ArchiveRefused(ApplicationError):
    status_code = 409
    code = "archive_refused"
    title = "Archive refused"
    default_detail = "This month cannot be archived now."
