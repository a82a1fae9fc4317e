"""Where a webhook may go, with VODRAY_WEBHOOK_ALLOW_PRIVATE off (the default): every class of
address a server must not reach is refused, by name and by number, at registration
(``check_webhook_url``) and when connecting (``post_webhook`` through ``GuardedBackend``, against
a real receiver on loopback that must see nothing)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from datetime import UTC, datetime

import httpcore
import pytest

from pipelines.notify.addresses import (
    AddressPolicy,
    GuardedBackend,
    RefusedAddress,
    address_problem,
    check_webhook_url,
    parse_webhook_url,
)
from pipelines.notify.webhooks import new_secret, post_webhook, signed_headers
from tests.webhook_receiver import receiver

OFF = AddressPolicy()
LOOPBACK_ONLY = AddressPolicy(True, (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")))

REFUSED = {
    # class: (URL, a word the refusal must name)
    "loopback by name": ("http://localhost/hook", "loopback"),
    "loopback by number": ("http://127.0.0.1:8080/hook", "loopback"),
    "loopback anywhere in 127/8": ("http://127.1.2.3/", "loopback"),
    "short dotted form": ("http://127.1/", "loopback"),
    "IPv6 loopback": ("http://[::1]/", "loopback"),
    "IPv4-mapped IPv6 loopback": ("http://[::ffff:127.0.0.1]/", "loopback"),
    "IPv4-mapped IPv6 private": ("http://[::ffff:10.0.0.1]/", "private"),
    "6to4 of loopback": ("http://[2002:7f00:1::1]/", "loopback"),
    "NAT64 of loopback": ("http://[64:ff9b::7f00:1]/", "loopback"),
    "decimal IPv4": ("http://2130706433/", "loopback"),
    "hex IPv4": ("http://0x7f000001/", "loopback"),
    "octal IPv4": ("http://0177.0.0.1/", "loopback"),
    "unspecified IPv4": ("http://0.0.0.0/", "unspecified"),
    "unspecified by number": ("http://0/", "unspecified"),
    "unspecified IPv6": ("http://[::]/", "unspecified"),
    "private 10/8": ("https://10.1.2.3/hook", "private"),
    "private 172.16/12": ("http://172.16.0.1/", "private"),
    "private 192.168/16": ("http://192.168.1.1/", "private"),
    "shared 100.64/10": ("http://100.64.0.1/", "private"),
    "unique local IPv6": ("http://[fd00::1]/", "private"),
    "link-local metadata": ("http://169.254.169.254/latest/meta-data/", "link-local"),
    "link-local IPv6": ("http://[fe80::1]/", "link-local"),
    "multicast IPv4": ("http://224.0.0.1/", "multicast"),
    "multicast IPv6": ("http://[ff02::1]/", "multicast"),
    "documentation range": ("http://192.0.2.1/", "reserved"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_each_refused_address_class_is_refused_at_registration(case: str) -> None:
    url, word = REFUSED[case]
    with pytest.raises(RefusedAddress) as refused:
        asyncio.run(check_webhook_url(url, OFF))
    assert word in refused.value.detail, refused.value.detail
    assert refused.value.status_code == 400


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.org/hook", "must be http:// or https://"),
        ("file:///etc/passwd", "must be http:// or https://"),
        ("gopher://127.0.0.1:70/", "must be http:// or https://"),
        ("javascript:alert(1)", "must be http:// or https://"),
        ("example.org/hook", "must be http:// or https://"),
        ("http://user:pw@example.org/", "user name or password"),
        ("http://example.org@127.0.0.1/", "user name or password"),
        ("http:///hook", "no host"),
        ("http://exa mple.org/", "spaces or control characters"),
        ("http://example.org:99999/", "not valid"),
        ("http://" + "a" * 2100 + ".org/", "at most 2048"),
    ],
)
def test_urls_that_are_not_plain_http_are_refused(url: str, reason: str) -> None:
    with pytest.raises(RefusedAddress) as refused:
        parse_webhook_url(url)
    assert reason in refused.value.detail


def test_global_addresses_pass_and_the_allow_setting_lets_only_loopback_and_private_through() -> None:
    public = ipaddress.ip_address("93.184.215.14")
    assert address_problem(public, OFF) is None
    assert address_problem(ipaddress.ip_address("2606:4700::1111"), OFF) is None
    allow = AddressPolicy(allow_private=True)
    for text in ("127.0.0.1", "::1", "10.0.0.1", "::ffff:192.168.0.1"):
        assert address_problem(ipaddress.ip_address(text), allow) is None, text
    for text in ("169.254.169.254", "fe80::1", "0.0.0.0", "::", "224.0.0.1"):
        assert address_problem(ipaddress.ip_address(text), allow) is not None, text
    # VODRAY_WEBHOOK_NETWORKS narrows whatever the rules allow.
    assert "outside VODRAY_WEBHOOK_NETWORKS" in (address_problem(public, LOOPBACK_ONLY) or "")
    assert address_problem(ipaddress.ip_address("127.0.0.1"), LOOPBACK_ONLY) is None


async def _post(url: str, policy: AddressPolicy, timeout_s: float = 5.0) -> tuple[int | None, str | None]:
    pool = httpcore.AsyncConnectionPool(network_backend=GuardedBackend(policy), max_keepalive_connections=0)
    body = json.dumps({"type": "webhook.ping", "timestamp": "2026-01-01T00:00:00Z", "data": {}}).encode()
    secret = new_secret()
    now = datetime.now(UTC)
    async with pool:
        outcome = await post_webhook(pool, url, signed_headers("evt_1", body, [secret], now), body, timeout_s)
    return outcome.status_code, outcome.error


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]"])
def test_a_delivery_checks_the_address_again_when_it_connects(host: str) -> None:
    """Registered while allowed (or resolving elsewhere then): with the setting off, the request
    is refused when connecting, and the receiver on loopback hears nothing."""
    with receiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        status, error = asyncio.run(_post(f"http://{host}:{port}/hook", OFF))
        assert status is None and error is not None and "refused address" in error, error
        assert hook.received == []
        # The same request with loopback allowed reaches it (the check, not the network, refused).
        if host != "[::ffff:127.0.0.1]":  # a mapped address is never a local socket's address
            status, error = asyncio.run(_post(f"http://{host}:{port}/hook", LOOPBACK_ONLY))
            assert (status, error) == (200, None)
            assert len(hook.received) == 1


def test_redirects_are_not_followed() -> None:
    from tests.webhook_receiver import Answer

    with receiver(Answer(302, {"location": "http://169.254.169.254/"})) as hook:
        status, error = asyncio.run(_post(hook.url, LOOPBACK_ONLY))
        assert status == 302 and error is not None and "redirects are not followed" in error
        assert len(hook.received) == 1


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt() -> None:
    from tests.webhook_receiver import Answer

    with receiver(Answer(200, delay_s=3.0)) as hook:
        started = time.monotonic()
        status, error = asyncio.run(_post(hook.url, LOOPBACK_ONLY, timeout_s=0.5))
        assert status is None and error == "no answer within 0.5 s"
        assert time.monotonic() - started < 2.0
