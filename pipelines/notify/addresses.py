"""Where a webhook may go: no request to a place a server must not reach (SSRF).

A URL is checked when it is registered and again at every delivery. The check that counts is
the one made when connecting (``GuardedBackend``): the host is resolved, every address it
resolves to is checked, and the connection goes to a checked address, while the name stays in
the Host header and the TLS SNI. So a name that resolved to a public address at registration
and to 127.0.0.1 now (DNS rebinding) is refused, and no second lookup happens between the check
and the connect; whatever host the HTTP client parsed out of the URL is the one checked.

Refused: schemes other than http and https; a user name or password in the URL; any address
that is not global unicast: loopback, private (RFC 1918, unique local), shared (100.64.0.0/10),
link-local (169.254.0.0/16 with the cloud metadata service 169.254.169.254, fe80::/10),
multicast, unspecified (0.0.0.0, ::), reserved and documentation ranges. IPv6 forms that carry
an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64) are judged by that IPv4
address. Numeric host forms the resolver accepts (``2130706433``, ``0x7f000001``, ``127.1``)
are resolved like any name, so each is refused as the address it stands for.

``allow_private`` (``VODRAY_WEBHOOK_ALLOW_PRIVATE``) lets loopback and private addresses through,
for tests and closed networks; link-local, multicast and unspecified ones stay refused.
``networks`` (``VODRAY_WEBHOOK_NETWORKS``), when set, is the only place webhooks may go.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpcore

from cluster.errors import BadRequest
from cluster.settings import NotifySettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_CHARS = 2048
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedAddress(BadRequest):
    """A webhook URL, or an address its host resolves to, that vodray will not send to."""


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def of(cls, notify: NotifySettings) -> AddressPolicy:
        return cls(notify.allow_private, tuple(ipaddress.ip_network(n) for n in notify.networks))


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo client, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: IPAddress, policy: AddressPolicy) -> str | None:
    """Why a webhook may not be sent to ``ip`` (a sentence fragment), or None if it may."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        problem = address_problem(embedded, policy)
        return f"{ip} stands for {embedded}, and {problem}" if problem else None
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_link_local:
        return f"{ip} is a link-local address (where cloud metadata services answer)"
    if not policy.allow_private:
        if ip.is_loopback:
            return f"{ip} is a loopback address"
        if ip.is_private or ip.is_reserved or not ip.is_global:
            return f"{ip} is a private or reserved address"
    if policy.networks and not any(ip in network for network in policy.networks):
        return f"{ip} is outside VODRAY_WEBHOOK_NETWORKS"
    return None


@dataclass(frozen=True)
class WebhookUrl:
    url: str
    scheme: str
    host: str
    port: int


def parse_webhook_url(url: str) -> WebhookUrl:
    """The URL's parts if it may be a webhook's (http or https, a host, no credentials); else
    ``RefusedAddress`` saying why. Its addresses are checked by ``resolve_checked``."""
    if len(url) > MAX_URL_CHARS:
        raise RefusedAddress(f"a webhook URL may have at most {MAX_URL_CHARS} characters")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise RefusedAddress("a webhook URL may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedAddress(f"the webhook URL is not valid: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RefusedAddress(f"a webhook URL must be http:// or https://, not {scheme or 'without a scheme'}")
    if parts.username is not None or parts.password is not None:
        raise RefusedAddress("a webhook URL may not hold a user name or password")
    host = parts.hostname or ""
    if not host:
        raise RefusedAddress("the webhook URL has no host")
    return WebhookUrl(url, scheme, host, port or (443 if scheme == "https" else 80))


async def resolve_checked(host: str, port: int, policy: AddressPolicy) -> list[str]:
    """Every address ``host`` resolves to, if each may be sent to; else ``RefusedAddress``.

    One bad address refuses the host: a resolver may hand them out in any order."""
    try:
        found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RefusedAddress(f"the host {host[:255]!r} does not resolve") from exc
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in found:
        text = str(sockaddr[0]).split("%", 1)[0]
        problem = address_problem(ipaddress.ip_address(text), policy)
        if problem:
            raise RefusedAddress(f"the host {host[:255]!r} resolves to a refused address: {problem}")
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise RefusedAddress(f"the host {host[:255]!r} does not resolve")
    return addresses


async def check_webhook_url(url: str, policy: AddressPolicy) -> WebhookUrl:
    """``parse_webhook_url``, then every address of its host checked (registration)."""
    parsed = parse_webhook_url(url)
    await resolve_checked(parsed.host, parsed.port, policy)
    return parsed


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses ``resolve_checked`` allowed.

    httpcore hands it the URL's host; TLS is started on the stream afterwards with that host
    as the SNI and the name the certificate must match, so HTTPS works as with any client."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await resolve_checked(host, port, self._policy):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddress("webhooks are never sent over a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
