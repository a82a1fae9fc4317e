"""Which address the login and registration throttles count a request against."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Request

from serve.throttle import KEY_MAX_CHARS, client_address, is_loopback


def request(peer: str | None, *headers: tuple[str, str]) -> Request[Any, Any, Any]:
    """The request an ASGI server hands Litestar: from ``peer``, with these header lines in order."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/v1/auth/login",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
        "client": (peer, 41000) if peer else None,
        "state": {},
    }
    return Request(scope)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # The local HAProxy appended the client's address; what the client sent comes before it.
        ("127.0.0.1", [("X-Forwarded-For", "203.0.113.7, 198.51.100.4")], "198.51.100.4"),
        (
            "127.0.0.1",
            [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "198.51.100.4")],
            "198.51.100.4",
        ),
        ("::1", [("X-Forwarded-For", "2001:db8::5")], "2001:db8::5"),
        ("::ffff:127.0.0.1", [("X-Forwarded-For", "198.51.100.4")], "198.51.100.4"),
        ("127.0.0.9", [("X-Forwarded-For", "198.51.100.4")], "198.51.100.4"),
        # Nothing forwarded (or only blanks): the peer itself.
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", [("X-Forwarded-For", " ")], "127.0.0.1"),
        # A peer that is not on this machine chose the header itself: it is not believed.
        ("198.51.100.4", [("X-Forwarded-For", "127.0.0.1")], "198.51.100.4"),
        ("10.0.0.8", [("X-Forwarded-For", "203.0.113.7, 127.0.0.1")], "10.0.0.8"),
        (None, [("X-Forwarded-For", "203.0.113.7")], "unknown"),
    ],
)
def test_without_a_configured_header_only_a_loopback_peer_is_believed(
    peer: str | None, headers: list[tuple[str, str]], expected: str
) -> None:
    assert client_address(request(peer, *headers), None) == expected


def test_a_configured_header_is_believed_from_any_peer_and_its_last_line_wins() -> None:
    lines = [("X-Real-Client", "203.0.113.7, 10.1.1.1"), ("X-Real-Client", "198.51.100.4")]
    assert client_address(request("10.0.0.8", *lines), "X-Real-Client") == "198.51.100.4"
    # Only that header: X-Forwarded-For from the load balancer's side is not read then.
    forwarded = ("X-Forwarded-For", "203.0.113.9")
    assert client_address(request("127.0.0.1", forwarded), "X-Real-Client") == "127.0.0.1"


def test_a_megabyte_address_is_cut_to_the_key_size() -> None:
    forwarded = ("X-Forwarded-For", "a" * 1_000_000)
    assert client_address(request("127.0.0.1", forwarded), None) == "a" * KEY_MAX_CHARS


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.3.4", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("localhost", False),  # a name, not an address: never what an ASGI server reports
        ("unknown", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
