"""Periodic housekeeping of the identity schema (Procrastinate)."""

from django.db import close_old_connections
from procrastinate.contrib.django import app

from . import services


@app.periodic(cron="17 * * * *", periodic_id="prune_sessions")
@app.task(name="auth.prune_sessions", queue="maintenance")
def prune_sessions(timestamp: int) -> None:
    close_old_connections()
    try:
        services.sessions_prune()
    finally:
        close_old_connections()


@app.periodic(cron="47 * * * *", periodic_id="prune_verifications")
@app.task(name="auth.prune_verifications", queue="maintenance")
def prune_verifications(timestamp: int) -> None:
    close_old_connections()
    try:
        services.verifications_prune()
    finally:
        close_old_connections()
