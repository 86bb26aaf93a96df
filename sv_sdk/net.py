"""Who the client is: its address (the TCP peer, or behind trusted proxies the first hop they
did not add) and whether an origin it names is one of this application's; and the cookies
this application sets it."""

import functools
import ipaddress
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def clean_ip(value: str | None) -> str | None:
    """`value` as a canonical IP address string, or None when it is not one."""
    address = _address(value)
    return str(address) if address is not None else None


def client_ip(request) -> str | None:
    """The address of the client that sent `request`, for rate limits, lockouts, audit rows
    and sessions.

    With no trusted proxy (SV_TRUSTED_PROXIES empty, the default) it is the TCP peer,
    REMOTE_ADDR, and X-Forwarded-For is ignored: anyone can write that header. When the
    peer is a trusted proxy, X-Forwarded-For is read right to left, each hop having been
    appended by the one after it: the first address that is not itself a trusted proxy is
    the client. Entries left of it were written by the client and are never believed.
    """
    meta = request.META
    peer = _address(meta.get("REMOTE_ADDR"))
    proxies = trusted_networks(tuple(settings.SV_TRUSTED_PROXIES))
    if peer is None or not _is_trusted(peer, proxies):
        return str(peer) if peer is not None else None
    for hop in reversed(meta.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _address(hop)
        if address is None:
            # A trusted proxy forwarded something unreadable: the last hop it vouched
            # for is all that is known.
            break
        peer = address
        if not _is_trusted(address, proxies):
            break
    return str(peer)


def is_from_trusted_proxy(request) -> bool:
    """Whether the TCP peer of `request` is one of SV_TRUSTED_PROXIES."""
    peer = _address(request.META.get("REMOTE_ADDR"))
    proxies = trusted_networks(tuple(settings.SV_TRUSTED_PROXIES))
    return peer is not None and _is_trusted(peer, proxies)


@functools.cache
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """SV_TRUSTED_PROXIES's entries (addresses or CIDR blocks) as networks.

    Raises ImproperlyConfigured naming the first entry that is neither.
    """
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"SV_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR block"
            ) from None
    return tuple(networks)


class UntrustedForwardedProtoMiddleware:
    """Drop X-Forwarded-Proto unless a trusted proxy sent the request.

    SECURE_PROXY_SSL_HEADER makes Django believe that header from any peer; a
    client reaching the app directly must not be able to claim https.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "HTTP_X_FORWARDED_PROTO" in request.META and not is_from_trusted_proxy(request):
            del request.META["HTTP_X_FORWARDED_PROTO"]
        return self.get_response(request)


def _is_trusted(address: Address, proxies: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def _address(value: str | None) -> Address | None:
    value = (value or "").strip()
    if not value:
        return None
    # Some proxies add the port: "203.0.113.7:51234", "[2001:db8::1]:443".
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    # An IPv4 client seen through a dual-stack socket is that IPv4 address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def cookie_set(response, name: str, value: str, *, secure: bool, path: str = "/", **lifetime):
    """Set one of this application's cookies: never readable by scripts (HttpOnly), and sent
    cross-site on top-level navigations only (SameSite=Lax); `lifetime`: max_age or expires."""
    response.set_cookie(
        name, value, path=path, secure=secure, httponly=True, samesite="Lax", **lifetime
    )


def with_params(url: str, **params) -> str:
    """`url` with `params` added to its query string."""
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    return urlunsplit(parts._replace(query=query))


def url_origin(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute http(s) URL, lower-cased; None for anything else."""

    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_trusted(url: str | None) -> bool:
    """Whether `url` (an origin or any absolute URL) is at one of SV_TRUSTED_ORIGINS.

    The one list serves browser redirects after a sign-in, the better-auth API's
    origin check and CORS (docs/better-auth.md).
    """
    origin = url_origin(url or "")
    return origin is not None and origin in {o.lower() for o in settings.SV_TRUSTED_ORIGINS}


def cors_allowed(sender, request, **kwargs) -> bool:
    """django-cors-headers' check_request_enabled: a trusted origin calling one of the APIs."""
    return bool(re.match(settings.CORS_URLS_REGEX, request.path_info)) and origin_trusted(
        request.headers.get("origin")
    )
