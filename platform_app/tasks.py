"""Background jobs of the cross-app flows (Procrastinate)."""

from procrastinate.contrib.django import app

from platform_app import flows
from sv_sdk.jobs import db_job

# forgot-password and send-verification-email defer these and answer at once: the request
# does the same work for a known and an unknown address, so its timing tells nothing.


@app.task(name="auth.password_reset_request", queue="email")
@db_job
def password_reset_request(email: str) -> None:
    flows.password_reset_request(email=email)


@app.task(name="auth.verification_email_resend", queue="email")
@db_job
def verification_email_resend(email: str) -> None:
    flows.verification_email_resend(email=email)
