"""send_test_email: delivered to a real SMTP server, or a clear CommandError."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from email_app.models import EmailSend

pytestmark = pytest.mark.django_db


def test_send_test_email_delivers_at_once_and_reports_the_message_id(smtp):
    out = io.StringIO()
    call_command("send_test_email", "--to", "ops@example.com", stdout=out)

    (message,) = smtp.inbox.messages
    assert message["To"] == "ops@example.com"
    assert message["Subject"] == "Test email from sv_sdk"
    assert "through the smtp backend" in message.get_body(("plain",)).get_content()
    send = EmailSend.objects.get(to_email="ops@example.com")
    assert send.status == EmailSend.Status.SENT
    assert f"Sent email {send.pk}" in out.getvalue()
    assert send.provider_message_id in out.getvalue()


@pytest.mark.parametrize("address", ["not-an-address", "a@", ""])
def test_send_test_email_refuses_a_bad_address(address):
    with pytest.raises(CommandError, match="Not a valid email address"):
        call_command("send_test_email", "--to", address, stdout=io.StringIO())
    assert not EmailSend.objects.filter(template__key="test-email").exists()


def test_send_test_email_says_why_when_the_server_is_unreachable(smtp, settings):
    smtp.stop()
    with pytest.raises(CommandError, match="was not sent \\(deferred\\)"):
        call_command("send_test_email", "--to", "ops@example.com", stdout=io.StringIO())
