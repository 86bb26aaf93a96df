"""What every background job shares."""

import functools

from django.db import close_old_connections


def db_job(func):
    """Run a job with its database connection handled as Django handles a request's.

    Jobs run on worker threads: the connection goes back to the pool after each
    one, and a broken one is not reused for the next.
    """

    @functools.wraps(func)
    def job(*args, **kwargs):
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return job
