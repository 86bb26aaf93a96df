"""Periodic housekeeping of the identity schema (Procrastinate)."""

from procrastinate.contrib.django import app

from sv_sdk.jobs import db_job

from . import accounts, services


@app.periodic(cron="17 * * * *", periodic_id="prune_sessions")
@app.task(name="auth.prune_sessions", queue="maintenance")
@db_job
def prune_sessions(timestamp: int) -> None:
    services.sessions_prune()


@app.periodic(cron="47 * * * *", periodic_id="prune_verifications")
@app.task(name="auth.prune_verifications", queue="maintenance")
@db_job
def prune_verifications(timestamp: int) -> None:
    services.verifications_prune()


@app.periodic(cron="*/10 * * * *", periodic_id="prune_oauth_states")
@app.task(name="auth.prune_oauth_states", queue="maintenance")
@db_job
def prune_oauth_states(timestamp: int) -> None:
    accounts.oauth_states_prune()
