"""Periodic job of the audit domain (Procrastinate): seal new rows with a checkpoint."""

import logging

from procrastinate.contrib.django import app

from sv_sdk.jobs import db_job

from . import services
from .errors import CheckpointDelayed

logger = logging.getLogger(__name__)


@app.periodic(cron="*/5 * * * *", periodic_id="audit_checkpoint")
@app.task(name="audit.checkpoint", queue="maintenance")
@db_job
def audit_checkpoint(timestamp: int) -> None:
    try:
        services.audit_checkpoint_create(wait_seconds=60)
    except CheckpointDelayed as exc:
        # The next run seals these rows too.
        logger.warning("audit checkpoint skipped: %s", exc.detail)
