"""The email API: templates with preview, the outbox, preferences and one-click unsubscribe."""

import pytest
from django.db import connection

from audit_app.models import AuditLog
from auth_app.models import User
from email_app.models import EmailPreference, EmailSend, EmailTemplate
from email_app.tests.factories import EmailSendFactory
from email_app.unsubscribe import unsubscribe_token
from tests.support import api_client, assert_problem

pytestmark = pytest.mark.django_db


class TestTemplates:
    def test_a_reader_lists_templates_with_the_variables_they_use(self, user_with):
        response = api_client(user_with("email:read")).get(
            "/api/v1/email/templates?key=verify-email"
        )

        assert response.status_code == 200
        (template,) = response.json()["results"]
        assert template["variables"] == ["expires_hours", "verify_url"]

    def test_templates_need_email_read_and_a_session(self, user_with):
        assert api_client(user_with()).get("/api/v1/email/templates").status_code == 403
        anonymous = api_client(None).get("/api/v1/email/templates")
        assert anonymous.status_code == 401
        assert_problem(anonymous, 401, "not_authenticated")

    def test_a_writer_creates_and_changes_a_template_and_each_change_bumps_the_version(
        self, user_with
    ):
        writer = user_with("email:read", "email:write")
        client = api_client(writer)
        created = client.post(
            "/api/v1/email/templates",
            {"key": "digest", "locale": "fr", "subject": "Résumé", "text_body": "{{ items }}"},
            format="json",
        )
        assert created.status_code == 201, created.content
        template_id = created.json()["id"]

        changed = client.patch(
            f"/api/v1/email/templates/{template_id}", {"subject": "Votre résumé"}, format="json"
        )

        assert changed.status_code == 200
        assert (changed.json()["subject"], changed.json()["version"]) == ("Votre résumé", 2)
        audit = AuditLog.objects.filter(event_type="email_template.changed", target_id=template_id)
        assert audit.count() == 2 and {a.actor_id for a in audit} == {writer.pk}

    def test_a_duplicate_template_is_a_conflict_and_bad_syntax_a_validation_error(self, user_with):
        client = api_client(user_with("email:write"))
        duplicate = client.post(
            "/api/v1/email/templates",
            {"key": "welcome", "subject": "Hi", "text_body": "Hi"},
            format="json",
        )
        broken = client.post(
            "/api/v1/email/templates",
            {"key": "broken", "subject": "Hi", "text_body": "{% for %}"},
            format="json",
        )

        assert_problem(duplicate, 409, "template_exists")
        assert "text_body" in assert_problem(broken, 400, "validation_error")["errors"]

    def test_a_reader_cannot_change_a_template(self, user_with):
        template = EmailTemplate.objects.get(key="welcome")
        response = api_client(user_with("email:read")).patch(
            f"/api/v1/email/templates/{template.pk}", {"subject": "Hacked"}, format="json"
        )
        assert response.status_code == 403
        template.refresh_from_db()
        assert template.subject == "Welcome aboard"

    def test_the_preview_renders_the_given_context_with_html_escaped(self, user_with):
        template = EmailTemplate.objects.get(key="welcome")
        response = api_client(user_with("email:read")).post(
            f"/api/v1/email/templates/{template.pk}/preview",
            {"context": {"user_name": "<Ada>"}},
            format="json",
        )

        assert response.status_code == 200
        body = response.json()
        assert body["subject"] == "Welcome aboard"
        assert "Hello <Ada>," in body["text"]
        assert "&lt;Ada&gt;" in body["html"] and "<Ada>" not in body["html"]

    def test_the_preview_reports_every_missing_variable_as_a_problem(self, user_with):
        template = EmailTemplate.objects.get(key="verify-email")
        response = api_client(user_with("email:read")).post(
            f"/api/v1/email/templates/{template.pk}/preview",
            {"context": {"user_name": "Ada"}},
            format="json",
        )

        body = assert_problem(response, 400, "template_variable_missing")
        assert body["errors"]["context"] == [
            "Missing variable 'expires_hours'.",
            "Missing variable 'verify_url'.",
        ]


class TestSends:
    def test_the_list_pages_by_cursor_newest_first_without_repeats(self, user_with):
        client = api_client(user_with("email:read"))
        sends = EmailSendFactory.create_batch(5)
        seen, url = [], "/api/v1/email/sends?template=welcome&limit=2"
        while url:
            page = client.get(url).json()
            seen += [s["id"] for s in page["results"]]
            url = page["next"]
        assert seen == [s.pk for s in reversed(sends)]

    def test_the_list_filters_by_status_and_user(self, user_with):
        reader = user_with("email:read")
        (failed, _queued) = EmailSendFactory.create_batch(2)
        EmailSend.objects.filter(pk=failed.pk).update(status=EmailSend.Status.FAILED)
        client = api_client(reader)

        by_status = client.get("/api/v1/email/sends?status=failed").json()["results"]
        by_user = client.get(f"/api/v1/email/sends?user={reader.pk}").json()["results"]
        bad = client.get("/api/v1/email/sends?status=lost&since=yesterday")

        assert [s["id"] for s in by_status] == [failed.pk]
        assert [s["template"] for s in by_user] == ["verify-email"]
        assert set(assert_problem(bad, 400, "validation_error")["errors"]) == {"status", "since"}

    def test_a_queued_verification_email_shows_no_live_token(self, user_with):
        reader = user_with("email:read")
        send = EmailSend.objects.get(user=reader, template__key="verify-email")
        ((_url, token),) = send.link_values().values()

        response = api_client(reader).get(f"/api/v1/email/sends/{send.pk}")

        assert response.status_code == 200
        assert token not in response.content.decode()
        assert "[redacted]" in response.json()["text_body"]
        assert response.json()["context"]["verify_url"] == "[redacted]"

    def test_a_sender_queues_an_email_once_per_idempotency_key(self, user_with):
        client = api_client(user_with("email:send"))
        body = {
            "to": "new@example.com",
            "template": "welcome",
            "category": "product",
            "context": {"user_name": "New"},
            "idempotency_key": "welcome-new",
        }

        first = client.post("/api/v1/email/send", body, format="json")
        again = client.post("/api/v1/email/send", body, format="json")

        assert first.status_code == 202, first.content
        assert first.json()["status"] == "queued"
        assert again.json()["id"] == first.json()["id"]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE args->>'send_id' = %s",
                [first.json()["id"]],
            )
            assert cursor.fetchone()[0] == 1

    def test_sending_needs_email_send_and_a_complete_context(self, user_with):
        body = {"to": "x@example.com", "template": "welcome", "category": "product"}
        refused = api_client(user_with("email:read")).post(
            "/api/v1/email/send", body, format="json"
        )
        incomplete = api_client(user_with("email:send")).post(
            "/api/v1/email/send", body, format="json"
        )

        assert refused.status_code == 403
        assert_problem(incomplete, 400, "template_variable_missing")
        assert not EmailSend.objects.filter(to_email="x@example.com").exists()


class TestPreferences:
    def test_a_user_sees_every_category_with_security_and_account_always_on(self, user_with):
        response = api_client(user_with()).get("/api/v1/email/preferences")

        assert response.status_code == 200
        assert response.json()["preferences"] == [
            {"category": "security", "subscribed": True, "essential": True},
            {"category": "account", "subscribed": True, "essential": True},
            {"category": "product", "subscribed": True, "essential": False},
            {"category": "marketing", "subscribed": True, "essential": False},
        ]

    def test_a_user_opts_out_of_marketing_but_not_of_security(self, user_with):
        user = user_with()
        client = api_client(user)

        done = client.put(
            "/api/v1/email/preferences", {"preferences": {"marketing": False}}, format="json"
        )
        refused = client.put(
            "/api/v1/email/preferences",
            {"preferences": {"product": False, "security": False}},
            format="json",
        )

        assert done.status_code == 200
        assert {p["category"]: p["subscribed"] for p in done.json()["preferences"]}[
            "marketing"
        ] is False
        assert set(assert_problem(refused, 400, "validation_error")["errors"]) == {"security"}
        # The refused request changed nothing, not even its valid part.
        assert not EmailPreference.objects.filter(user=user, category="product").exists()

    def test_preferences_need_a_session(self):
        assert api_client(None).get("/api/v1/email/preferences").status_code == 401


class TestUnsubscribe:
    def test_get_only_shows_what_the_link_would_do(self, user_with):
        user = user_with()
        token = unsubscribe_token(user_id=user.pk, category="marketing")

        response = api_client(None).get(f"/api/v1/email/unsubscribe/{token}")

        assert response.json() == {"category": "marketing", "subscribed": True}
        assert not EmailPreference.objects.filter(user=user).exists()

    def test_a_one_click_post_unsubscribes_and_is_audited(self, user_with):
        user = user_with()
        token = unsubscribe_token(user_id=user.pk, category="marketing")

        response = api_client(None).post(
            f"/api/v1/email/unsubscribe/{token}",
            "List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )

        assert response.status_code == 200
        assert response.json() == {"category": "marketing", "subscribed": False}
        assert not EmailPreference.objects.get(user=user, category="marketing").subscribed
        audit = AuditLog.objects.get(event_type="email.unsubscribed", user_id=user.pk)
        assert token not in str(audit.metadata)

    def test_the_query_string_link_of_older_emails_still_unsubscribes(self, user_with):
        user = user_with()
        token = unsubscribe_token(user_id=user.pk, category="marketing")

        response = api_client(None).post(
            f"/api/v1/email/unsubscribe?token={token}",
            "List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )

        assert response.status_code == 200
        assert not EmailPreference.objects.get(user=user, category="marketing").subscribed
        empty = api_client(None).post("/api/v1/email/unsubscribe?token=")
        assert_problem(empty, 400, "token_invalid")

    @pytest.mark.parametrize(
        "tamper",
        [
            lambda token, user: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
            lambda token, user: unsubscribe_token(user_id=user.pk, category="security"),
            lambda token, user: "not-a-token",
        ],
        ids=["bad signature", "essential category", "garbage"],
    )
    def test_a_forged_token_is_refused_and_changes_nothing(self, user_with, tamper):
        user = user_with()
        token = tamper(unsubscribe_token(user_id=user.pk, category="marketing"), user)

        response = api_client(None).post(f"/api/v1/email/unsubscribe/{token}")

        assert_problem(response, 400, "token_invalid")
        assert not EmailPreference.objects.filter(user=user).exists()

    def test_the_link_of_a_deleted_user_stops_working(self, user_with):
        user = user_with()
        token = unsubscribe_token(user_id=user.pk, category="marketing")
        User.objects.filter(pk=user.pk).delete()

        response = api_client(None).get(f"/api/v1/email/unsubscribe/{token}")

        assert response.status_code == 400
