"""Render email templates with Django's engine; a missing variable is an error."""

import functools
import re
import secrets
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, Node, Variable, VariableNode
from django.template.defaulttags import FilterNode, ForNode, IfNode, URLNode, WithNode
from django.template.loader_tags import ExtendsNode, IncludeNode

from .bounded_filters import MAX_LOOP_ITERATIONS, MAX_RENDERED_CHARS, too_large
from .errors import TemplateRenderFailed, TemplateVariableMissing

# What replaces a secret (a link with a token) wherever an email is stored or shown.
REDACTED = "[redacted]"


class _RaiseOnMissing(str):
    """string_if_invalid that raises instead of rendering an empty string.

    Django formats string_if_invalid with the variable's name when it is
    truthy and contains "%s"; this object claims both, and raises at that moment.
    """

    def __bool__(self):
        return True

    def __contains__(self, item):
        return item == "%s"

    def __mod__(self, name):
        raise TemplateVariableMissing(
            f"template variable {str(name)!r} is missing", errors={"context": [str(name)]}
        )


class _CollectMissing(str):
    """string_if_invalid that notes each missing variable and renders it as nothing."""

    def __init__(self, *args):
        super().__init__()
        self.missing: list[str] = []

    def __bool__(self):
        return True

    def __contains__(self, item):
        return item == "%s"

    def __mod__(self, name):
        if str(name) not in self.missing:
            self.missing.append(str(name))
        return ""


class _Budget:
    """What one message has used of its limits; lives on the render's Context."""

    def __init__(self):
        self.chars = 0
        self.iterations = 0

    def charge(self, chars: int = 0, iterations: int = 0) -> None:
        self.chars += chars
        self.iterations += iterations
        if self.chars > MAX_RENDERED_CHARS:
            raise too_large("The rendered email")
        if self.iterations > MAX_LOOP_ITERATIONS:
            raise too_large("The loops of the template")


class _BudgetedContext(Context):
    def __init__(self, values: dict, *, autoescape: bool, budget: _Budget):
        super().__init__(values, autoescape=autoescape)
        self.budget = budget


def _charged(render, context):
    output = render(context)
    budget = getattr(context, "budget", None)
    if budget is not None:
        budget.charge(chars=len(output))
    return output


class _CountedSequence(FilterExpression):
    """A {% for %} sequence that charges its length to the message's loop budget.

    Nested loops resolve their sequence once per outer pass, so the charge is
    the number of passes, even of loops that write nothing.
    """

    __slots__ = ()

    def resolve(self, context, ignore_failures=False):
        values = super().resolve(context, ignore_failures)
        if values is not None and not hasattr(values, "__len__"):
            values = list(values)
        budget = getattr(context, "budget", None)
        if budget is not None and values is not None:
            budget.charge(iterations=len(values))
        return values


class _BoundedEngine(Engine):
    """An engine whose filters are bounded and whose templates charge what they write.

    Every leaf node (text, variable, other tags without children) charges its
    output to the message's budget as it renders, so a loop stops at the first
    pass past the limit instead of after building the whole string. So does
    {% filter %}, the one tag whose output is not just its children's.
    """

    def __init__(self, **options):
        super().__init__(builtins=["email_app.bounded_filters"], **options)

    def from_string(self, template_code):
        template = super().from_string(template_code)
        for node in template.nodelist.get_nodes_by_type(Node):
            if isinstance(node, ForNode):
                node.sequence.__class__ = _CountedSequence
            leaf = not any(getattr(node, attr, None) for attr in node.child_nodelists)
            if leaf or isinstance(node, FilterNode):
                node.render_annotated = functools.partial(_charged, node.render_annotated)
        return template


class _CompilingOnceEngine(_BoundedEngine):
    """An engine that compiles each source once, as Django's cached template loader does.

    A template's source changes only with its version, and a compiled Template is
    rendered concurrently all the time in Django, so the outbox need not parse
    the same source for every email it queues.
    """

    # Module-level engines only, so caching on the method keeps nothing else alive.
    @functools.lru_cache(maxsize=512)  # noqa: B019
    def from_string(self, template_code):
        return super().from_string(template_code)


_html_engine = _CompilingOnceEngine(autoescape=True, string_if_invalid=_RaiseOnMissing())
_text_engine = _CompilingOnceEngine(autoescape=False, string_if_invalid=_RaiseOnMissing())


def _render_with(text_engine, html_engine, **parts):
    try:
        return _render_parts(text_engine, html_engine, **parts)
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        # A filter given a value it cannot take, e.g. {{ count|divisibleby:"x" }}.
        raise TemplateRenderFailed(
            f"The template cannot be rendered with this context: {exc}",
            errors={"context": [str(exc)]},
        ) from None


def _render_parts(text_engine, html_engine, *, subject, text_body, html_body, context):
    # One budget for the whole message. A Context escapes by default whatever its
    # engine says: name it each time.
    budget = _Budget()
    text_context = _BudgetedContext(context, autoescape=False, budget=budget)
    subject_out = text_engine.from_string(subject).render(text_context).strip()
    text_out = text_engine.from_string(text_body).render(text_context)
    html_out = (
        html_engine.from_string(html_body).render(
            _BudgetedContext(context, autoescape=True, budget=budget)
        )
        if html_body
        else ""
    )
    # A subject must be a single line (header injection).
    return " ".join(subject_out.split()), text_out, html_out


def render(*, subject: str, text_body: str, html_body: str, context: dict) -> tuple[str, str, str]:
    """Return the rendered (subject, text, html); HTML is auto-escaped, the others are not."""
    return _render_with(
        _text_engine,
        _html_engine,
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        context=context,
    )


def render_preview(
    *, subject: str, text_body: str, html_body: str, context: dict
) -> tuple[tuple[str, str, str], list[str]]:
    """Render like `render`, but collect every missing variable instead of stopping at the first."""
    collector = _CollectMissing()
    # Engines per call: the collector is this preview's own state.
    text_engine = _BoundedEngine(autoescape=False, string_if_invalid=collector)
    html_engine = _BoundedEngine(autoescape=True, string_if_invalid=collector)
    rendered = _render_with(
        text_engine,
        html_engine,
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        context=context,
    )
    return rendered, collector.missing


# Tags that reach outside the template (files, URL patterns) and could only fail at render time.
_OUTSIDE_TAGS = {ExtendsNode: "extends", IncludeNode: "include", URLNode: "url"}


def check_syntax(source: str) -> None:
    """Raise TemplateSyntaxError if `source` does not compile or uses extends/include/url."""
    nodes = _text_engine.from_string(source).nodelist.get_nodes_by_type(Node)
    for node in nodes:
        for node_type, tag in _OUTSIDE_TAGS.items():
            if isinstance(node, node_type):
                raise TemplateSyntaxError(f"the {{% {tag} %}} tag is not available in emails")


def _expressions(node: Node) -> Iterator[FilterExpression]:
    if isinstance(node, VariableNode):
        yield node.filter_expression
    elif isinstance(node, ForNode):
        yield node.sequence
    elif isinstance(node, WithNode):
        yield from node.extra_context.values()
    elif isinstance(node, IfNode):
        for condition, _nodelist in node.conditions_nodelists:
            stack = [condition]
            while stack:
                operand = stack.pop()
                if operand is None:
                    continue
                if isinstance(getattr(operand, "value", None), FilterExpression):
                    yield operand.value
                stack.extend([getattr(operand, "first", None), getattr(operand, "second", None)])


def _root_names(expression: FilterExpression) -> Iterator[str]:
    candidates = [expression.var]
    for _func, args in expression.filters:
        candidates.extend(arg for is_lookup, arg in args if is_lookup)
    for var in candidates:
        if isinstance(var, Variable) and var.lookups:
            yield var.lookups[0]


def variables(*sources: str) -> list[str]:
    """The context variables the templates use, sorted; loop and `with` names excluded.

    Raises TemplateSyntaxError if a source does not compile.
    """
    used: set[str] = set()
    bound: set[str] = {"forloop", "block"}
    for source in sources:
        if not source:
            continue
        nodes = _text_engine.from_string(source).nodelist.get_nodes_by_type(Node)
        for node in nodes:
            if isinstance(node, ForNode):
                bound.update(node.loopvars)
            elif isinstance(node, WithNode):
                bound.update(node.extra_context)
            for expression in _expressions(node):
                used.update(_root_names(expression))
    return sorted(used - bound)


# Secret links ------------------------------------------------------------------------------
#
# A link carrying a token (verification, password reset) never enters a template's
# context: the context holds a marker, random per email so no template can spell it
# in advance, and the link replaces the marker only in the message handed to the email
# backend. A filter applied to the marker gives a string that is not the marker, which
# nothing replaces: no template can get hold of the token. Where the marker stands
# decides whether the link can be sent: see docs/security.md, "Secret links".

LINK_MARKER = re.compile(r"\u27e6link:[0-9a-f]{32}\u27e7")
# Characters after which a link stands alone: it cannot be the tail of another URL.
_LINK_LEAD = frozenset(" \t\r\n\f<")
# Tags that keep the text around them on one run, as a mail client linkifies it.
_INLINE_TAGS = frozenset(
    "a abbr b bdi bdo big cite code em font i kbd mark q s samp small span strike strong sub "
    "sup time tt u var".split()
)


def link_marker() -> str:
    """A new marker for one secret link of one email."""
    return f"\u27e6link:{secrets.token_hex(16)}\u27e7"


def links_shown(text: str) -> str:
    """`text` with every secret-link marker shown as [redacted]."""
    return LINK_MARKER.sub(REDACTED, text)


class _LinkPlaces(HTMLParser):
    """Count the markers of an HTML body that stand where a link may.

    A marker may be a whole href value, or a word of the text preceded by a
    space or a block boundary. Anywhere else (inside a longer attribute value,
    after other text, in a comment, a style or a script) it could become part
    of another URL, e.g. https://attacker/?<link>; as another attribute (an
    image's src) a mail client would fetch it unasked.
    """

    def __init__(self, markers: Iterable[str]):
        super().__init__(convert_charrefs=True)
        self.markers = list(markers)
        self.placed = dict.fromkeys(self.markers, 0)
        self.before = " "  # the text just before, across inline tags

    def _tag(self, tag: str, attrs) -> None:
        for name, value in attrs:
            for marker in self.markers:
                if name == "href" and value and value.strip() == marker:
                    self.placed[marker] += 1
        if tag not in _INLINE_TAGS:
            self.before = " "

    def handle_starttag(self, tag, attrs):
        self._tag(tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self._tag(tag, attrs)

    def handle_endtag(self, tag):
        if tag not in _INLINE_TAGS:
            self.before = " "

    def handle_data(self, data):
        if not data:
            return
        if not self.cdata_elem:  # <style> and <script> hold no link
            for marker in self.markers:
                start = data.find(marker)
                while start != -1:
                    if (data[start - 1] if start else self.before) in _LINK_LEAD:
                        self.placed[marker] += 1
                    start = data.find(marker, start + 1)
        self.before = data[-1]


def links_misplaced(markers: Iterable[str], *, subject: str, text: str, html: str) -> dict:
    """The markers each rendered part ("subject", "text_body", "html_body") holds out of place.

    The subject holds no link; the text body holds one only as a word of its own;
    the HTML body as `_LinkPlaces` says.
    """
    markers = list(markers)
    misplaced = {}
    if not markers:
        return misplaced
    in_subject = {m for m in markers if m in subject}
    if in_subject:
        misplaced["subject"] = in_subject
    in_text = set()
    for marker in markers:
        # str.find, not a regular expression: each marker is random, so a pattern
        # made of it would be compiled anew for every email (about 40 us each).
        start = text.find(marker)
        while start != -1:
            if start and text[start - 1] not in _LINK_LEAD:
                in_text.add(marker)
            start = text.find(marker, start + len(marker))
    if in_text:
        misplaced["text_body"] = in_text
    if html:
        # The same template gives the same HTML but for the random markers: with
        # fixed stand-ins, most emails find their verdict cached instead of parsed.
        stand_ins = {m: f"\u27e6link:{i:032x}\u27e7" for i, m in enumerate(markers)}
        for marker, stand_in in stand_ins.items():
            html = html.replace(marker, stand_in)
        out_of_place = _html_misplaced(html, tuple(stand_ins.values()))
        in_html = {m for m, stand_in in stand_ins.items() if stand_in in out_of_place}
        if in_html:
            misplaced["html_body"] = in_html
    return misplaced


@functools.lru_cache(maxsize=64)
def _html_misplaced(html: str, markers: tuple[str, ...]) -> frozenset[str]:
    places = _LinkPlaces(markers)
    places.feed(html)
    places.close()
    return frozenset(m for m in markers if html.count(m) > places.placed[m])


def links_damaged(markers: Iterable[str], *parts: str) -> set[str]:
    """The markers a filter changed: some of their random part is left, not the whole."""
    damaged = set()
    for marker in markers:
        nonce = marker[6:-1]
        for part in parts:
            rest = part.replace(marker, "").lower()
            if any(nonce[i : i + 8] in rest for i in range(len(nonce) - 7)):
                damaged.add(marker)
    return damaged


__all__ = [
    "LINK_MARKER",
    "REDACTED",
    "TemplateSyntaxError",
    "check_syntax",
    "link_marker",
    "links_damaged",
    "links_misplaced",
    "links_shown",
    "render",
    "render_preview",
    "variables",
]
