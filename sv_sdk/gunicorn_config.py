"""Gunicorn's settings (`gunicorn -c python:sv_sdk.gunicorn_config`): shutdown, logs, metrics."""

from sv_sdk import env as sv_env
from sv_sdk.logs import logging_config
from sv_sdk.metrics import multiprocess_start, process_exited

wsgi_app = "sv_sdk.wsgi"
# A few threads per worker process (docs/decisions.md, issue 20): while one request waits
# on PostgreSQL another runs, and a client's connection stays open between requests (the
# sync worker closes it after each one). Each thread holds at most one pooled connection,
# so DATABASE_POOL_SIZE must stay at least this; a password hash (46 MiB) per thread at
# most, so a worker's peak memory grows by that much per thread.
worker_class = "gthread"
threads = 4
# On SIGTERM, workers stop accepting and finish the requests they are serving; those
# still running after this many seconds are cut off.
graceful_timeout = sv_env.SHUTDOWN_TIMEOUT
# Gunicorn's own lines in the app's format; its access log stays off, since the app
# writes one line per request with the request id, user id, route and duration.
logconfig_dict = logging_config(json_lines=sv_env.LOG_FORMAT == "json", level=sv_env.LOG_LEVEL)


def on_starting(server):
    multiprocess_start()


def child_exit(server, worker):
    process_exited(worker.pid)
