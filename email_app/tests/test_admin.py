"""The email admin: template preview and audited edits, read-only outbox with a resend action."""

import pytest

from audit_app.models import AuditLog
from email_app import services
from email_app.models import EmailSend, EmailSuppression, EmailTemplate
from email_app.tests.factories import EmailSendFactory
from platform_app.flows import user_onboard

pytestmark = pytest.mark.django_db


def test_the_template_page_previews_the_rendered_email(admin_client):
    template = EmailTemplate.objects.get(key="verify-email")

    page = admin_client.get(f"/admin/email_app/emailtemplate/{template.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "expires_hours, verify_url" in html
    assert "expires in [expires_hours] hours" in html  # the text body, with placeholders
    assert "srcdoc=" in html


def test_saving_a_template_in_the_admin_bumps_its_version_and_is_audited(admin_client):
    template = EmailTemplate.objects.get(key="welcome")
    form = {
        "subject": "Welcome to the team",
        "text_body": template.text_body,
        "html_body": template.html_body,
        "description": template.description,
        "is_active": "on",
    }

    response = admin_client.post(f"/admin/email_app/emailtemplate/{template.pk}/change/", form)

    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.subject, template.version) == ("Welcome to the team", 2)
    assert AuditLog.objects.filter(
        event_type="email_template.changed", target_id=template.pk
    ).exists()


def test_a_template_with_broken_syntax_is_not_saved_from_the_admin(admin_client):
    template = EmailTemplate.objects.get(key="welcome")
    form = {"subject": "{% if %}", "text_body": "x", "html_body": "", "is_active": "on"}

    response = admin_client.post(f"/admin/email_app/emailtemplate/{template.pk}/change/", form)

    assert response.status_code == 200
    assert "Template syntax error" in response.content.decode()
    template.refresh_from_db()
    assert template.version == 1


def test_the_resend_action_queues_a_copy_of_each_selected_email(admin_client):
    send = EmailSendFactory(to_email="again@example.com")
    EmailSend.objects.filter(pk=send.pk).update(status=EmailSend.Status.FAILED)

    response = admin_client.post(
        "/admin/email_app/emailsend/",
        {"action": "resend", "_selected_action": [send.pk]},
    )

    assert response.status_code == 302
    copies = EmailSend.objects.filter(to_email="again@example.com").exclude(pk=send.pk)
    assert [c.status for c in copies] == [EmailSend.Status.QUEUED]


def test_a_send_page_is_read_only_and_hides_the_live_token(admin_client):
    send = EmailSend.objects.get(template__key="verify-email", to_email="root@example.com")

    page = admin_client.get(f"/admin/email_app/emailsend/{send.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "[redacted]" in html
    ((_url, token),) = send.link_values().values()
    assert token not in html
    assert 'name="_save"' not in html


LIVE_PREVIEW = "/admin/email_app/emailtemplate/live-preview/"


def test_the_live_preview_renders_unsaved_fields_and_reports_syntax_errors(admin_client):
    response = admin_client.post(
        LIVE_PREVIEW,
        {
            "subject": "Hi {{ name }}",
            "text_body": "Code: {{ code }}",
            "html_body": "<b>{{ x }}</b>",
        },
    )
    assert response.status_code == 200
    assert response.json() == {
        "subject": "Hi [name]",
        "text": "Code: [code]",
        "html": "<b>[x]</b>",
        "variables": ["code", "name", "x"],
        "error": "",
    }
    broken = admin_client.post(LIVE_PREVIEW, {"subject": "{% if %}"})
    assert broken.status_code == 400 and "syntax error" in broken.json()["error"]
    assert admin_client.get(LIVE_PREVIEW).status_code == 405


def test_the_live_preview_needs_email_read(client):
    from permissions_app.models import Role
    from permissions_app.services import role_create, role_grant

    clerk = user_onboard(email="clerk@example.com", is_staff=True)
    client.force_login(clerk)
    assert client.post(LIVE_PREVIEW, {"subject": "x"}).status_code == 403
    role = role_create(name="email-reader", permissions=["email:read"])
    role_grant(user=clerk, role=Role.objects.get(pk=role.pk))
    clerk.refresh_from_db()
    assert client.post(LIVE_PREVIEW, {"subject": "x"}).status_code == 200


def test_the_suppression_list_shows_the_providers_reason_and_lifts_through_the_service(
    admin_client, settings
):
    send = services.email_queue(
        to_email="gone@example.com",
        category="product",
        template_key="welcome",
        context={"user_name": "G"},
    )
    services.email_webhook_record(
        provider="postmark",
        event_id="pm-bounce-1",
        event_type="bounced",
        payload={"RecordType": "Bounce", "Type": "HardBounce"},
        send_id=send.pk,
        reason="smtp;550 5.1.1 The email account does not exist",
    )
    row = EmailSuppression.objects.get()

    listing = admin_client.get("/admin/email_app/emailsuppression/")
    events = admin_client.get("/admin/email_app/emailwebhook/")
    response = admin_client.post(
        "/admin/email_app/emailsuppression/",
        {"action": "lift", "_selected_action": [row.pk]},
        follow=True,
    )

    assert "550 5.1.1 The email account does not exist" in listing.content.decode()
    assert "550 5.1.1 The email account does not exist" in events.content.decode()
    assert "Lifted 1 suppression(s)" in response.content.decode()
    row.refresh_from_db()
    assert row.lifted_at is not None
    assert AuditLog.objects.filter(event_type="email.suppression_lifted", target_id=row.pk).exists()
    assert services.suppression_active(to_email="gone@example.com") is None


def test_staff_who_may_only_read_email_cannot_lift_a_suppression(client, user_with):
    reader = user_with("email:read")
    reader.is_staff = True
    reader.save(update_fields=["is_staff"])
    send = services.email_queue(
        to_email="gone@example.com",
        category="product",
        template_key="welcome",
        context={"user_name": "G"},
    )
    row = services.email_suppress(send=send, reason="complaint", provider="resend")
    client.force_login(reader)

    listing = client.get("/admin/email_app/emailsuppression/")
    response = client.post(
        "/admin/email_app/emailsuppression/", {"action": "lift", "_selected_action": [row.pk]}
    )

    assert listing.status_code == 200
    assert "Lift the selected" not in listing.content.decode()
    assert response.status_code in (200, 302)
    row.refresh_from_db()
    assert row.lifted_at is None
