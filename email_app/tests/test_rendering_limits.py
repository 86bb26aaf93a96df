"""Issue 15, class 7: a template cannot make rendering allocate without bound.

`{{ 'a'|ljust:'100000000' }}` once made a preview answer 200 MB. Filter arguments that
size the output are capped, loops are counted, and the whole message has a size limit;
going over is a 400 `template_too_large` at preview, at save and at send time.
"""

import time

import pytest

from email_app import services
from email_app.bounded_filters import MAX_RENDERED_CHARS
from email_app.errors import TemplateTooLarge
from email_app.models import EmailSend, EmailTemplate
from email_app.rendering import render
from tests.support import api_client

pytestmark = pytest.mark.django_db

HUGE = [
    "{{ 'a'|ljust:'100000000' }}",
    "{{ 'a'|center:100000000 }}",
    "{{ 1|floatformat:100000000 }}",
    "{{ 1|stringformat:'0100000000d' }}",
    "{{ 'abc'|truncatechars:100000000 }}",
    # Loops multiplying what they write, and loops that only spin.
    "{% for a in 'x'|ljust:5000 %}{% for b in 'x'|ljust:5000 %}y{% endfor %}{% endfor %}",
    "{% for a in 'x'|ljust:5000 %}{% for b in 'x'|ljust:5000 %}{% endfor %}{% endfor %}",
    "{% for a in 'x'|ljust:9000 %}{% filter ljust:9000 %}{% endfilter %}{% endfor %}",
    # A value doubled step by step through {% with %}.
    "{% with a='x'|ljust:9000 %}{% with b=a|add:a %}{% with c=b|add:b %}{% with d=c|add:c %}"
    "{% with e=d|add:d %}{% with f=e|add:e %}{% with g=f|add:f %}{% with h=g|add:g %}"
    "{% with i=h|add:h %}{{ i|add:i }}{% endwith %}{% endwith %}{% endwith %}{% endwith %}"
    "{% endwith %}{% endwith %}{% endwith %}{% endwith %}{% endwith %}",
    "{{ 'x'|ljust:9000|make_list|join:'" + "y" * 60 + "' }}",
]


@pytest.mark.parametrize("source", HUGE)
def test_preview_of_a_huge_template_is_a_quick_400(user_with, source):
    template = EmailTemplate.objects.get(key="welcome")
    started = time.monotonic()

    response = api_client(user_with("email:read")).post(
        f"/api/v1/email/templates/{template.pk}/preview",
        {"text_body": source, "context": {"user_name": "A"}},
        format="json",
    )

    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "template_too_large"
    assert len(response.content) < 2000
    assert time.monotonic() - started < 5


def test_a_large_context_value_repeated_by_a_loop_is_stopped():
    with pytest.raises(TemplateTooLarge):
        render(
            subject="s",
            text_body="{% for i in items %}{{ big }}{% endfor %}",
            html_body="",
            context={"items": list(range(100)), "big": "b" * 10_000},
        )


def test_an_ordinary_email_renders_as_before():
    subject, text, _html = render(
        subject="Hi {{ name|title }}",
        text_body="{% for i in items %}{{ i|ljust:3 }}|{% endfor %} {{ 3.14159|floatformat:2 }}",
        html_body="",
        context={"name": "ada", "items": ["a", "b"]},
    )

    assert subject == "Hi Ada"
    assert text == "a  |b  | 3.14"


def test_creating_or_changing_a_huge_template_is_refused(user_with):
    client = api_client(user_with("email:read", "email:write"))
    template = EmailTemplate.objects.get(key="welcome")

    created = client.post(
        "/api/v1/email/templates",
        {"key": "huge", "subject": "s", "text_body": HUGE[0]},
        format="json",
    )
    changed = client.patch(
        f"/api/v1/email/templates/{template.pk}", {"html_body": HUGE[5]}, format="json"
    )

    assert (created.status_code, changed.status_code) == (400, 400)
    assert {created.json()["code"], changed.json()["code"]} == {"template_too_large"}
    assert not EmailTemplate.objects.filter(key="huge").exists()
    assert EmailTemplate.objects.get(pk=template.pk).version == template.version


def test_the_admin_form_refuses_a_huge_template(admin_client):
    template = EmailTemplate.objects.get(key="welcome")

    response = admin_client.post(
        f"/admin/email_app/emailtemplate/{template.pk}/change/",
        {"subject": "s", "text_body": HUGE[0], "html_body": "", "is_active": "on"},
    )
    preview = admin_client.post(
        "/admin/email_app/emailtemplate/live-preview/",
        {"subject": "s", "text_body": HUGE[0], "html_body": ""},
    )

    assert response.status_code == 200 and "too large" in response.content.decode()
    assert preview.status_code == 400 and "too large" in preview.json()["error"]
    assert EmailTemplate.objects.get(pk=template.pk).version == template.version


def test_sending_with_a_context_that_makes_it_huge_is_a_400_and_queues_nothing(user_with):
    services.template_create(
        key="digest",
        locale="en",
        subject="Digest",
        text_body="{% for i in items %}{% for j in items %}{{ i }}{% endfor %}{% endfor %}",
    )
    client = api_client(user_with("email:send"))
    before = EmailSend.objects.count()

    response = client.post(
        "/api/v1/email/send",
        {
            "to": "reader@example.com",
            "template": "digest",
            "category": "product",
            "context": {"items": ["x" * 100] * 90},
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "template_too_large"
    assert EmailSend.objects.count() == before


def test_lorem_and_debug_are_not_available(user_with):
    client = api_client(user_with("email:read", "email:write"))

    for source in ("{% lorem 100000000 w %}", "{% debug %}"):
        response = client.post(
            "/api/v1/email/templates",
            {"key": "tags", "subject": "s", "text_body": source},
            format="json",
        )
        assert response.status_code == 400
        assert "not available in emails" in str(response.json()["errors"])


def test_the_limit_is_the_whole_message():
    half = MAX_RENDERED_CHARS // 2 + 10
    with pytest.raises(TemplateTooLarge):
        render(
            subject="s",
            text_body="{{ big }}",
            html_body="{{ big }}",
            context={"big": "b" * half},
        )
