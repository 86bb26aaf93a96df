"""Background jobs of the email domain (Procrastinate)."""

from procrastinate import BaseRetryStrategy, RetryDecision
from procrastinate.contrib.django import app

from sv_sdk.jobs import db_job

from . import services


class _RetryDeferredDelivery(BaseRetryStrategy):
    """Retry exactly the transient failures, after the wait the service computed.

    The attempt count lives on the send row (it survives a re-queued job), so
    the service decides when to give up; any other exception is a bug, and the
    send stays in `sending` until email.recover_stalled queues it again.
    """

    def get_retry_decision(self, *, exception, job):
        if isinstance(exception, services.DeliveryDeferred):
            return RetryDecision(retry_in={"seconds": exception.retry_in})
        return None


@app.task(name="email.deliver", queue="email", retry=_RetryDeferredDelivery())
@db_job
def email_deliver(send_id: str) -> None:
    services.email_deliver(send_id=send_id)


@app.periodic(cron="* * * * *", periodic_id="email-recover-stalled")
@app.task(name="email.recover_stalled", queue="email", queueing_lock="email.recover_stalled")
@db_job
def email_recover_stalled(timestamp: int) -> None:
    services.email_recover_stalled()
