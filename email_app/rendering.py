"""Render email templates with Django's engine; a missing variable is an error."""

import functools
from collections.abc import Iterator

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, Node, Variable, VariableNode
from django.template.defaulttags import ForNode, IfNode, URLNode, WithNode
from django.template.loader_tags import ExtendsNode, IncludeNode

from .errors import TemplateRenderFailed, TemplateVariableMissing


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


class _CompilingOnceEngine(Engine):
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
    # A Context escapes by default whatever its engine says: name it each time.
    text_context = Context(context, autoescape=False)
    subject_out = text_engine.from_string(subject).render(text_context).strip()
    text_out = text_engine.from_string(text_body).render(text_context)
    html_out = (
        html_engine.from_string(html_body).render(Context(context, autoescape=True))
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
    text_engine = Engine(autoescape=False, string_if_invalid=collector)
    html_engine = Engine(autoescape=True, string_if_invalid=collector)
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


__all__ = ["TemplateSyntaxError", "check_syntax", "render", "render_preview", "variables"]
