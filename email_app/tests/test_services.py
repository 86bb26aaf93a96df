"""Templates, the outbox's queueing rules, suppression, preferences and recovery."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, connections, transaction
from django.utils import timezone
from procrastinate.contrib.django import app

from audit_app.models import AuditLog
from email_app import services
from email_app.errors import ResendImpossible, TemplateExists, TemplateVariableMissing
from email_app.models import EmailPreference, EmailSend, EmailTemplate
from email_app.tests.factories import EmailSendFactory
from platform_app.flows import user_onboard
from sv_sdk.errors import ValidationFailed


def jobs_for(send_id: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE args->>'send_id' = %s", [send_id]
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
class TestTemplates:
    def test_every_change_bumps_the_version_and_is_audited(self):
        template = services.template_create(
            key="digest", locale="en", subject="Your {{ period }} digest", text_body="Hi"
        )
        services.template_update(template=template, subject="Your {{ period }} summary")
        services.template_update(template=template, subject="Your {{ period }} summary")

        template.refresh_from_db()
        assert template.version == 2  # the repeated identical update changed nothing
        changes = AuditLog.objects.filter(
            event_type="email_template.changed", target_id=template.pk
        )
        assert [c.metadata["version"] for c in changes.order_by("id")] == [1, 2]
        assert changes.order_by("id").last().metadata["changed"] == ["subject"]

    def test_a_key_and_locale_pair_exists_once(self):
        with pytest.raises(TemplateExists):
            services.template_create(key="welcome", locale="en", subject="s", text_body="t")

    def test_a_template_that_does_not_compile_is_refused(self):
        with pytest.raises(ValidationFailed) as caught:
            services.template_create(
                key="broken", locale="en", subject="s", text_body="{% if %}", html_body="ok"
            )
        assert set(caught.value.errors) == {"text_body"}
        assert not EmailTemplate.objects.filter(key="broken").exists()

    def test_a_locale_without_its_own_template_falls_back_to_the_default_locale(self):
        services.template_create(
            key="welcome", locale="fr", subject="Bienvenue", text_body="Bonjour {{ user_name }}"
        )
        assert services.template_get(key="welcome", locale="fr").subject == "Bienvenue"
        assert services.template_get(key="welcome", locale="de").locale == "en"


@pytest.mark.django_db
class TestQueue:
    def test_a_missing_variable_queues_nothing(self):
        before = EmailSend.objects.count()
        with pytest.raises(TemplateVariableMissing):
            EmailSendFactory(context={})
        assert EmailSend.objects.count() == before

    def test_a_repeated_idempotency_key_returns_the_first_send_and_queues_one_job(self):
        first = EmailSendFactory(idempotency_key="order-42-shipped")
        again = EmailSendFactory(idempotency_key="order-42-shipped", to_email="other@example.com")

        assert again.pk == first.pk
        assert EmailSend.objects.filter(idempotency_key="order-42-shipped").count() == 1
        assert jobs_for(first.pk) == 1

    def test_a_rolled_back_transaction_leaves_no_send_and_no_job(self):
        with pytest.raises(RuntimeError), transaction.atomic():
            send = EmailSendFactory()
            raise RuntimeError("the caller's work failed")
        assert not EmailSend.objects.filter(pk=send.pk).exists()
        assert jobs_for(send.pk) == 0

    def test_mail_to_an_unsubscribed_user_is_suppressed_but_account_mail_is_not(self):
        user = user_onboard(email="quiet@example.com")
        services.preference_set(user=user, category="product", subscribed=False)

        product = EmailSendFactory(to_email="quiet@example.com")
        account = EmailSendFactory(to_email="quiet@example.com", category="account", user=user)

        assert product.status == EmailSend.Status.SUPPRESSED
        assert product.user_id == user.pk  # found by address, for the unsubscribe link
        assert jobs_for(product.pk) == 0
        assert account.status == EmailSend.Status.QUEUED
        assert jobs_for(account.pk) == 1

    def test_an_address_that_bounced_gets_no_more_non_essential_mail_in_any_letter_case(self):
        bounced = EmailSendFactory(to_email="Gone@Example.com")
        services.email_suppress(send=bounced, reason="hard_bounce", provider="postmark")

        assert EmailSendFactory(to_email="gone@example.com").status == EmailSend.Status.SUPPRESSED
        assert (
            EmailSendFactory(to_email="gone@example.com", category="security").status
            == EmailSend.Status.QUEUED
        )

    def test_resending_copies_the_content_into_a_new_queued_send(self):
        original = EmailSendFactory()
        copy = services.email_resend(send=original)

        assert copy.pk != original.pk
        assert (copy.subject, copy.text_body, copy.status) == (
            original.subject,
            original.text_body,
            EmailSend.Status.QUEUED,
        )
        assert jobs_for(copy.pk) == 1

    def test_a_delivered_email_whose_link_was_redacted_cannot_be_resent(self):
        send = EmailSendFactory()
        EmailSend.objects.filter(pk=send.pk).update(text_body="Open [redacted]")
        send.refresh_from_db()
        with pytest.raises(ResendImpossible):
            services.email_resend(send=send)


@pytest.mark.django_db(transaction=True)
def test_twenty_racing_calls_with_one_idempotency_key_queue_one_email():
    barrier = threading.Barrier(20)
    results = []

    def call():
        try:
            barrier.wait()
            with transaction.atomic(durable=True):
                results.append(EmailSendFactory(idempotency_key="racing-key").pk)
        except Exception as exc:
            results.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    send = EmailSend.objects.get(idempotency_key="racing-key")
    assert results == [send.pk] * 20
    assert jobs_for(send.pk) == 1


@pytest.mark.django_db
class TestPreferences:
    def test_unsubscribing_is_audited_once_and_essential_categories_cannot_be_left(self):
        user = user_onboard(email="pref@example.com")
        services.preference_set(user=user, category="marketing", subscribed=False)
        services.preference_set(user=user, category="marketing", subscribed=False)

        assert not EmailPreference.objects.get(user=user, category="marketing").subscribed
        assert (
            AuditLog.objects.filter(event_type="email.unsubscribed", user_id=user.pk).count() == 1
        )
        with pytest.raises(ValidationFailed):
            services.preference_set(user=user, category="security", subscribed=False)


@pytest.mark.django_db
def test_a_send_stuck_in_sending_past_the_timeout_is_queued_again_once(settings):
    settings.SV_EMAIL_SENDING_TIMEOUT = 60
    stuck = EmailSendFactory()
    fresh = EmailSendFactory(to_email="fresh@example.com")
    now = timezone.now()
    EmailSend.objects.filter(pk=stuck.pk).update(
        status=EmailSend.Status.SENDING, claimed_at=now - timedelta(minutes=5), attempts=1
    )
    EmailSend.objects.filter(pk=fresh.pk).update(
        status=EmailSend.Status.SENDING, claimed_at=now, attempts=1
    )

    assert services.email_recover_stalled() == 1
    assert services.email_recover_stalled() == 0  # its job is already waiting
    assert jobs_for(stuck.pk) == 2  # the original job and the recovery's
    assert jobs_for(fresh.pk) == 1


@pytest.mark.django_db
def test_a_send_that_crashed_its_worker_on_every_attempt_ends_failed_not_looping(settings):
    settings.SV_EMAIL_SENDING_TIMEOUT = 60
    send = EmailSendFactory()
    EmailSend.objects.filter(pk=send.pk).update(
        status=EmailSend.Status.SENDING,
        claimed_at=timezone.now() - timedelta(minutes=5),
        attempts=settings.SV_EMAIL_MAX_ATTEMPTS,
    )

    services.email_deliver(send_id=send.pk)

    send.refresh_from_db()
    assert send.status == EmailSend.Status.FAILED
    assert mail.outbox == []
    assert AuditLog.objects.filter(event_type="email.failed", target_id=send.pk).exists()


def test_the_worker_looks_for_stalled_sends_every_minute():
    crons = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert crons["email.recover_stalled"] == "* * * * *"
