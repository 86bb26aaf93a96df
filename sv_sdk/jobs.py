"""What every background job shares."""

import functools

from django.db import close_old_connections
from procrastinate.contrib.django import app
from procrastinate.jobs import JobDeferrer
from procrastinate.sql import queries
from procrastinate.types import JobToDefer
from psycopg.types.json import Jsonb


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


def deferrer(task_name: str, **options) -> JobDeferrer:
    """What defers a job of the registered task `task_name`, found by its name.

    A service queues its app's jobs by name: the jobs module imports the
    services it runs, so the services importing it back would make a cycle.
    """
    return app.configure_task(task_name, allow_unknown=False, **options)


def defer_statement(task_name: str, **task_kwargs) -> tuple[str, dict]:
    """The statement that defers a job of `task_name`, for a `sv_sdk.db.batch.Batch`.

    procrastinate's own query and job type, with the arguments as its Django
    connector passes them (dicts as jsonb); what `task.defer` would run, minus
    the round trip of its own. procrastinate's deferral log lines are not written.
    """
    job = deferrer(task_name).make_new_job(**task_kwargs)
    row = JobToDefer(
        queue_name=job.queue,
        task_name=job.task_name,
        priority=job.priority,
        lock=job.lock,
        queueing_lock=job.queueing_lock,
        args=Jsonb(job.task_kwargs),
        scheduled_at=job.scheduled_at,
    )
    return queries["defer_jobs"], {"jobs": [row]}
