"""Which addresses the server-side fetcher may connect to, and a connection that honours it.

A URL typed into the chat, a feed item or a redirect is chosen by a stranger, and the fetcher runs on
the server: left alone it reaches the server's own admin pages, the cloud metadata service
(169.254.169.254) or the office network. So, unless `RAG_FETCH_ALLOW_PRIVATE=1` (off by default, like
Open WebUI's ENABLE_RAG_LOCAL_WEB_FETCH):
- the host is resolved once, every address it resolves to is checked, and the connection is made to a
  checked address (`GuardedBackend`), so a name cannot resolve to a public address for the check and to
  127.0.0.1 for the connection (DNS rebinding); TLS SNI and the Host header still carry the name;
- loopback, private, link-local, unique-local, site-local, multicast, unspecified, reserved and other
  non-global addresses are refused, also inside IPv4-mapped/-compatible, 6to4, Teredo and NAT64 IPv6
  forms, and in the integer/octal/hex spellings of IPv4 that resolvers accept ("2130706433", "0x7f.1");
- a refusal happens before any packet goes to the address, so its wording never tells an open port
  from a closed one.
"""
from __future__ import annotations

import contextvars
import ipaddress
import re
import socket
import time
from urllib.parse import urlsplit

import httpcore

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
SWITCH = "RAG_FETCH_ALLOW_PRIVATE"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_INET_ATON = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.I)  # what inet_aton reads
_RULES = (  # checked in this order; the first that matches names the refusal
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_site_local", "a site-local address"),
    ("is_reserved", "a reserved address"),
    ("is_private", "a private address"),
)


class Refused(Exception):
    """The policy refuses this host or address; `reason` says which rule."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def refusal(ip: IP) -> str | None:
    """Why `ip` may not be fetched from, e.g. 'a loopback address' (None: a public address)."""
    for embedded in _embedded_ipv4(ip):
        if words := _kind(embedded):
            return f"an IPv6 form of {embedded}, {words}"
    return _kind(ip)


def _kind(ip: IP) -> str | None:
    for attribute, words in _RULES:
        if getattr(ip, attribute, False):  # is_site_local is IPv6 only
            if attribute == "is_private" and ip.version == 6 and ip in _UNIQUE_LOCAL:
                return "a unique-local address"
            return words
    if not ip.is_global:  # shared address space 100.64/10, documentation ranges, ...
        return "not a public address"
    return None


def literal(host: str) -> IP | None:
    """The address a host name spells out without DNS: an IP literal, or an IPv4 in any form inet_aton
    accepts (decimal, octal, hex, fewer than four parts), which getaddrinfo accepts too."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _INET_ATON.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def resolve(host: str, port: int, allow_private: bool) -> list[IP]:
    """The addresses to connect to for `host`, each checked; raises Refused if any is refused (a name
    that resolves to a public and a private address is refused: the connection could go to either)."""
    if not host:
        raise Refused("the URL has no host")
    ip = literal(host)
    if ip is not None:
        found = [ip]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as e:
            raise Refused(f"cannot resolve {host} ({getattr(e, 'strerror', None) or e})") from None
        found = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))
    if not found:
        raise Refused(f"cannot resolve {host}")
    if not allow_private:
        for address in found:
            if why := refusal(address):
                where = f"{address} is {why}" if ip is not None else f"{host} resolves to {address}, {why}"
                raise Refused(f"{where}; set {SWITCH}=1 to fetch from such addresses")
    return found


def check_url(url: str, allow_private: bool) -> None:
    """Raises Refused unless `url` is http(s) with a host the policy allows."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Refused("not an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("the URL has an invalid port") from None
    resolve(parts.hostname or "", port, allow_private)


# when the request in progress on this thread must be over (time.monotonic()); None: no deadline
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("fetch_deadline", default=None)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting only to addresses `resolve` allowed: the check and the
    connection use the same resolution. httpcore still uses the URL's name for TLS (SNI, certificate).
    Its streams also keep `DEADLINE`: per-read timeouts alone let a server that sends a byte a second
    hold a fetch for ever."""

    def __init__(self, allow_private: bool):
        self.allow_private = allow_private

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = resolve(host, port, self.allow_private)
        last: Exception | None = None
        for ip in addresses:
            try:
                stream = super().connect_tcp(str(ip), port, timeout, local_address, socket_options)
                return _DeadlineStream(stream)
            except httpcore.ConnectError as e:
                last = e
        raise last  # type: ignore[misc]


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose reads and writes never wait past DEADLINE (then: httpcore.ReadTimeout)."""

    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def _timeout(self, timeout: float | None, error: type[Exception]) -> float | None:
        deadline = DEADLINE.get()
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise error("the fetch ran past its overall deadline")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._timeout(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._timeout(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, self._timeout(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


def _embedded_ipv4(ip: IP) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d),
    6to4 (2002::/16), Teredo (2001::/32, the client) and NAT64 (64:ff9b::/96)."""
    if ip.version != 6:
        return []
    out = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo:
        out.append(ip.teredo[1])
    if int(ip) >> 32 == 0 and int(ip) > 1:  # ::a.b.c.d (deprecated IPv4-compatible); :: and ::1 are their own rules
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip in _NAT64:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out
