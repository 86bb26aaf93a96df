"""Rendering: Django's engine, escaped HTML, missing variables as errors, declared variables."""

import pytest
from django.template import TemplateSyntaxError

from email_app.errors import TemplateRenderFailed, TemplateVariableMissing
from email_app.rendering import check_syntax, render, render_preview, variables


def test_html_is_escaped_and_text_is_not():
    subject, text, html = render(
        subject="Hi {{ name }}",
        text_body="Hello {{ name }}",
        html_body="<p>Hello {{ name }}</p>",
        context={"name": "<b>Ada & co</b>"},
    )
    assert text == "Hello <b>Ada & co</b>"
    assert html == "<p>Hello &lt;b&gt;Ada &amp; co&lt;/b&gt;</p>"
    assert subject == "Hi <b>Ada & co</b>"


def test_a_missing_variable_is_an_error_not_an_empty_string():
    with pytest.raises(TemplateVariableMissing, match="verify_url"):
        render(subject="s", text_body="Open {{ verify_url }}", html_body="", context={})


def test_a_subject_cannot_smuggle_a_header_through_a_newline():
    subject, _text, _html = render(
        subject="Hello {{ name }}", text_body="", html_body="", context={"name": "x\nBcc: a@b.c"}
    )
    assert "\n" not in subject


def test_the_preview_lists_every_missing_variable_at_once():
    (_subject, text, _html), missing = render_preview(
        subject="{{ title }}",
        text_body="{{ greeting }} {{ name }}",
        html_body="<p>{{ name }}</p>",
        context={"greeting": "Hi"},
    )
    assert missing == ["title", "name"]
    assert text.startswith("Hi")


def test_declared_variables_leave_out_loop_and_with_names():
    names = variables(
        "{{ user.name|default:fallback }}",
        "{% for item in items %}{{ item }} {{ forloop.counter }}{% endfor %}"
        "{% if show_footer %}{% with sig=signature %}{{ sig }}{% endwith %}{% endif %}",
    )
    assert names == ["fallback", "items", "show_footer", "signature", "user"]


def test_a_filter_that_cannot_take_the_value_is_an_input_error_not_a_crash():
    with pytest.raises(TemplateRenderFailed):
        render(
            subject="s", text_body="{{ n|divisibleby:d }}", html_body="", context={"n": 4, "d": 0}
        )


@pytest.mark.parametrize(
    "source", ['{% include "x.html" %}', '{% extends "base.html" %}', "{% url 'x' %}"]
)
def test_tags_that_reach_outside_the_template_are_refused(source):
    with pytest.raises(TemplateSyntaxError, match="not available in emails"):
        check_syntax(source)
