"""Django's default filters with bounds on what they produce, and the tags emails cannot use.

The email engines load this library after Django's own, so its filters replace the
defaults of the same name. A template is written by operators and previewed by
readers: neither may make a worker allocate without bound (issue 15, class 7).
"""

import functools
import re

from django.template import Library, TemplateSyntaxError, defaultfilters

from .errors import TemplateTooLarge

# What one rendered message (subject, text and HTML together) may hold.
MAX_RENDERED_CHARS = 500_000
# Every {% for %} pass of one message, nested loops included.
MAX_LOOP_ITERATIONS = 10_000
# The largest width, length, precision or count a filter's argument may name.
MAX_FILTER_NUMBER = 10_000

# Filters whose argument sets how much they write: a width, a precision, a count.
_SIZED = frozenset(
    {
        "center",
        "floatformat",
        "ljust",
        "rjust",
        "stringformat",
        "truncatechars",
        "truncatechars_html",
        "truncatewords",
        "truncatewords_html",
        "urlizetrunc",
        "wordwrap",
    }
)
_NUMBER = re.compile(r"\d+")

register = Library()


def size(value) -> int:
    """Characters a filter's result stands for: a string's, or a list's items' and separators."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return len(value) + sum(size(item) for item in value)
    return 0


def too_large(what: str) -> TemplateTooLarge:
    return TemplateTooLarge(
        f"{what} is too large for an email (limits: {MAX_RENDERED_CHARS} characters, "
        f"{MAX_LOOP_ITERATIONS} loop passes, filter arguments up to {MAX_FILTER_NUMBER}).",
        errors={"template": [f"{what} is too large."]},
    )


def _check_argument(name: str, value, arg) -> None:
    """Refuse, before the filter runs, an argument that would make it write too much."""
    if name in _SIZED:
        # "ljust:'100000000'", "floatformat:'900g'", "stringformat:'0900000d'": every number counts.
        if any(int(number) > MAX_FILTER_NUMBER for number in _NUMBER.findall(str(arg))):
            raise too_large(f"The argument of |{name}")
    elif name == "join" and isinstance(value, list | tuple):
        if size(value) + len(value) * len(str(arg)) > MAX_RENDERED_CHARS:
            raise too_large("The result of |join")
    elif name == "add" and isinstance(value, str | list | tuple) and isinstance(arg, str | list):
        if size(value) + size(arg) > MAX_RENDERED_CHARS:
            raise too_large("The result of |add")


def _bounded(name: str, func):
    @functools.wraps(func)
    def bounded(value, *args, **kwargs):
        if args:
            _check_argument(name, value, args[0])
        result = func(value, *args, **kwargs)
        # Filters chained through {% with %} may grow a value step by step: stop each step.
        if size(result) > MAX_RENDERED_CHARS:
            raise too_large(f"The result of |{name}")
        return result

    return bounded


for _name, _func in defaultfilters.register.filters.items():
    # functools.wraps keeps the flags (is_safe, needs_autoescape, ...) and the signature.
    register.filter(_name, _bounded(_name, _func))


def _unavailable(parser, token):
    raise TemplateSyntaxError(
        f"the {{% {token.split_contents()[0]} %}} tag is not available in emails"
    )


# {% lorem %} writes as many words as asked; {% debug %} prints the context and the loaded modules.
register.tag("lorem", _unavailable)
register.tag("debug", _unavailable)
