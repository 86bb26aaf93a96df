"""Periodic jobs of the audit domain (Procrastinate): checkpoints and monthly partitions."""

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


@app.periodic(cron="23 3 * * *", periodic_id="audit_partitions")
@app.task(name="audit.partitions", queue="maintenance")
@db_job
def audit_partitions(timestamp: int) -> None:
    # Daily, for months created MONTHS_AHEAD ahead: a missed run or two changes nothing.
    created = services.audit_partitions_ensure()
    if created:
        logger.info("audit partitions created: %s", ", ".join(created))
