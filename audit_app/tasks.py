"""Periodic job of the audit domain (Procrastinate): seal new rows with a checkpoint."""

import logging

from django.db import close_old_connections
from procrastinate.contrib.django import app

from . import services
from .errors import CheckpointDelayed

logger = logging.getLogger(__name__)


@app.periodic(cron="*/5 * * * *", periodic_id="audit_checkpoint")
@app.task(name="audit.checkpoint", queue="maintenance")
def audit_checkpoint(timestamp: int) -> None:
    close_old_connections()
    try:
        services.audit_checkpoint_create(wait_seconds=60)
    except CheckpointDelayed as exc:
        # The next run seals these rows too.
        logger.warning("audit checkpoint skipped: %s", exc.detail)
    finally:
        close_old_connections()
