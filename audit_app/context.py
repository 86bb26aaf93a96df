"""Who is acting, from where: the context audit_record fills rows from.

The middleware puts the current request here; commands and jobs use
`audit_context(...)`. The actor is read from the request when a row is written,
not when the request arrives, because DRF authenticates inside the view and only
then sets `request.user` on the Django request.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

from django.http import HttpRequest

from sv_sdk.ids import new_id
from sv_sdk.net import client_ip


class _Unset:
    def __repr__(self):
        return "UNSET"


# "Not given", as opposed to None, which means "nobody" (the system).
UNSET = _Unset()

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")
USER_AGENT_MAX = 512


def accepted_request_id(value: str | None) -> str:
    """The caller's request id when well-formed, else a new one."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return new_id()


def clean_user_agent(value: str | None) -> str:
    # PostgreSQL text cannot hold NUL; the rest is kept as sent, shortened.
    return (value or "").replace("\x00", "")[:USER_AGENT_MAX]


@dataclass(frozen=True)
class AuditContext:
    request: HttpRequest | None = None
    explicit: dict = field(default_factory=dict)

    def value(self, name: str):
        if name in self.explicit:
            return self.explicit[name]
        request = self.request
        if request is None:
            return None if name in ("actor_id", "ip_address") else ""
        if name == "actor_id":
            user = getattr(request, "user", None)
            return str(user.pk) if user is not None and user.is_authenticated else None
        if name == "ip_address":
            return client_ip(request)
        if name == "user_agent":
            return clean_user_agent(request.META.get("HTTP_USER_AGENT"))
        if name == "request_id":
            return getattr(request, "request_id", "")
        raise KeyError(name)


_current: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)
_NO_CONTEXT = AuditContext()


def current_context() -> AuditContext:
    return _current.get() or _NO_CONTEXT


@contextmanager
def request_context(request: HttpRequest) -> Iterator[None]:
    token = _current.set(AuditContext(request=request))
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def audit_context(
    *,
    actor_id: str | _Unset | None = UNSET,
    ip_address: str | _Unset | None = UNSET,
    user_agent: str | _Unset = UNSET,
    request_id: str | _Unset = UNSET,
) -> Iterator[None]:
    """Set who acts for the audit rows written inside; for commands and jobs.

    `actor_id=None` says the system acts. Values not given come from the
    enclosing context (the request, if any).
    """
    given = {
        "actor_id": actor_id,
        "ip_address": ip_address,
        "user_agent": user_agent,
        "request_id": request_id,
    }
    outer = current_context()
    explicit = {**outer.explicit, **{k: v for k, v in given.items() if v is not UNSET}}
    token = _current.set(replace(outer, explicit=explicit))
    try:
        yield
    finally:
        _current.reset(token)
