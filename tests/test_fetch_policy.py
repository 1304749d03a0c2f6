"""The fetch policy (rag/ingest/netpolicy.py): what a stranger's URL may reach from the server. Loopback only:
the news site of tests/newssite.py on 127.0.0.1, and addresses that are refused before any connection."""
from __future__ import annotations

import ipaddress
import random
import socket
import time

import pytest

from rag.ingest import watch as ingest, netpolicy
from rag.errors import FetchError
from rag.ingest.fetch import Fetcher
from newssite import NewsSite, Route, rss


@pytest.fixture
def strict(settings):
    """The default policy (RAG_FETCH_ALLOW_PRIVATE off), short timeouts, no politeness delay."""
    assert settings.fetch_allow_private is False
    return settings.replace(fetch_timeout=0.5, fetch_retries=0, fetch_backoff=0.01, fetch_delay=0.0)


@pytest.fixture
def site():
    with NewsSite() as s:
        s.routes["/robots.txt"] = Route(404)
        s.html("/trang.html", "<html><body><p>Trang</p></body></html>")
        yield s


@pytest.fixture
def public_127001(monkeypatch):
    """127.0.0.1 (where the news site is) counts as a public address, every other loopback address
    stays refused: a site to start from, and internal addresses to redirect to."""
    real = netpolicy._kind
    monkeypatch.setattr(netpolicy, "_kind", lambda ip: None if ip == ipaddress.ip_address("127.0.0.1") else real(ip))


def _reason(settings, url: str) -> str:
    with Fetcher(settings) as f, pytest.raises(FetchError) as e:
        f.get(url)
    return e.value.reason


REFUSED = [  # (host as written in a URL, the rule that refuses it)
    ("127.0.0.1", "loopback"), ("127.1", "loopback"), ("2130706433", "loopback"), ("0x7f000001", "loopback"),
    ("0177.0.0.1", "loopback"), ("0x7f.0.0.1", "loopback"), ("017700000001", "loopback"), ("localhost", "loopback"),
    ("[::1]", "loopback"), ("0.0.0.0", "unspecified"), ("0", "unspecified"), ("[::]", "unspecified"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("167772161", "private"),
    ("169.254.169.254", "link-local"), ("[fe80::1]", "link-local"), ("[fc00::1]", "unique-local"),
    ("[fd12:3456::1]", "unique-local"), ("[fec0::1]", "site-local"), ("224.0.0.1", "multicast"), ("[ff02::1]", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "255.255.255.255 is"), ("100.64.0.1", "not a public address"),
    ("[::ffff:127.0.0.1]", "form of 127.0.0.1, a loopback"), ("[::ffff:7f00:1]", "form of 127.0.0.1, a loopback"),
    ("[::127.0.0.1]", "form of 127.0.0.1, a loopback"), ("[::ffff:169.254.169.254]", "form of 169.254.169.254, a link-local"),
    ("[2002:a00:1::]", "form of 10.0.0.1, a private"), ("[64:ff9b::a9fe:a9fe]", "form of 169.254.169.254, a link-local"),
]


@pytest.mark.parametrize("host, rule", REFUSED)
def test_each_internal_address_form_is_refused_and_says_which_rule(strict, host, rule):
    reason = _reason(strict, f"http://{host}:8080/admin/secret")
    assert reason.startswith("refused: ") and rule in reason and netpolicy.SWITCH in reason, reason


def test_refused_before_connecting_so_an_open_port_looks_like_a_closed_one(strict, site):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    open_port = site.url.rsplit(":", 1)[1]
    assert _reason(strict, site.url + "/trang.html") == _reason(strict, f"http://127.0.0.1:{closed}/trang.html")
    assert site.requests == []  # nothing reached the server, not even robots.txt
    assert open_port not in _reason(strict, site.url + "/trang.html")


def test_the_switch_allows_private_addresses(strict, site):
    with Fetcher(strict.replace(fetch_allow_private=True)) as f:
        assert f.get(site.url + "/trang.html").status == 200


def test_a_redirect_into_an_internal_address_is_refused(strict, site, public_127001):
    port = site.url.rsplit(":", 1)[1]
    for n, target in enumerate([f"http://127.0.0.2:{port}/admin", f"http://0.0.0.0:{port}/admin",
                                "http://169.254.169.254/latest/meta-data/", f"http://[::ffff:127.0.0.2]:{port}/",
                                f"http://2130706434:{port}/"]):
        site.routes[f"/go{n}"] = Route(302, headers={"Location": target})
        reason = _reason(strict, f"{site.url}/go{n}")
        assert reason.startswith(f"redirects to {target}, refused: "), reason
    assert [p for p in site.paths_requested() if p != "/robots.txt"] == [f"/go{n}" for n in range(5)]


def test_a_name_is_resolved_once_per_connection_and_connected_to_as_checked(strict, site, public_127001, monkeypatch):
    """DNS rebinding: a name that answers a public address to the check and an internal one to the
    connection. The connection resolves and checks on its own, so the internal address is never used."""
    port = int(site.url.rsplit(":", 1)[1])
    real, answers = socket.getaddrinfo, []

    def resolver(host, *args, **kwargs):
        if host != "news.test":
            return real(host, *args, **kwargs)
        answers.append(host)
        ip = "127.0.0.1" if len(answers) % 2 else "127.0.0.2"  # public (here), then internal, ...
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    reason = _reason(strict, f"http://news.test:{port}/trang.html")
    assert reason == f"refused: news.test resolves to 127.0.0.2, a loopback address; set {netpolicy.SWITCH}=1 to fetch from such addresses"
    assert site.requests == []
    # a name that resolves to a checked address: the connection goes to that address, the Host header keeps the name
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
                        if host == "news.test" else real(host, *a, **k))
    with Fetcher(strict) as f:
        assert f.get(f"http://news.test:{port}/trang.html").status == 200
    assert site.requests[-1][1]["Host"] == f"news.test:{port}"


def test_feed_and_sitemap_children_go_through_the_policy(strict, site, public_127001, fake_embedder):
    port = site.url.rsplit(":", 1)[1]
    site.xml("/rss", rss("Tin", [(f"http://127.0.0.3:{port}/bi-mat.html", "Bí mật", "2025-11-27")]), "application/rss+xml")
    report = ingest.add(strict, [site.url + "/rss"], embedder=fake_embedder)
    assert report.added == [] and len(report.errors) == 1 and "127.0.0.3 is a loopback address" in report.errors[0]


def test_the_chat_url_field_refuses_loopback_by_default(strict, site, fake_embedder):
    report = ingest.add_urls(strict, site.url + "/admin/secret", embedder=fake_embedder)
    assert report.added == [] and report.errors == [f"{site.url}/admin/secret: refused: 127.0.0.1 is a loopback address; "
                                                    f"set {netpolicy.SWITCH}=1 to fetch from such addresses"]
    assert site.requests == []


def test_an_overall_deadline_ends_a_trickling_response(strict, site):
    site.routes["/nho-giot.html"] = Route(body=b"<html>" + b"x" * 200 + b"</html>", headers={"Content-Type": "text/html"}, trickle=0.05)
    start = time.monotonic()
    reason = _reason(strict.replace(fetch_allow_private=True, fetch_max_seconds=1.0, fetch_retries=2), site.url + "/nho-giot.html")
    assert "took longer than 1 s in total" in reason and time.monotonic() - start < 3


def test_fuzz_encodings_of_internal_addresses_are_all_refused():
    """Seeded: random internal IPv4 addresses in every spelling inet_aton reads (and so getaddrinfo),
    and inside IPv6 forms, all refused; random public ones all allowed, and literal() agrees with the resolver."""
    rng = random.Random(22)
    internal = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                   "169.254.0.0/16", "0.0.0.0/8", "100.64.0.0/10", "224.0.0.0/4", "240.0.0.0/4")]
    for _ in range(400):
        net = rng.choice(internal)
        ip = ipaddress.IPv4Address(int(net.network_address) + rng.randrange(net.num_addresses))
        for host in _spellings(ip, rng):
            assert netpolicy.literal(host) == ip, host
            assert socket.inet_aton(host) == ip.packed, host
            with pytest.raises(netpolicy.Refused):
                netpolicy.resolve(host, 80, allow_private=False)
        for v6 in (f"::ffff:{ip}", f"::{ip}" if int(ip) > 1 else None, f"64:ff9b::{ip}",
                   f"2002:{int(ip) >> 16:x}:{int(ip) & 0xffff:x}::1"):
            if v6:
                with pytest.raises(netpolicy.Refused):
                    netpolicy.resolve(f"[{v6}]", 80, allow_private=False)
    public = 0
    while public < 200:
        ip = ipaddress.IPv4Address(rng.getrandbits(32))
        if not ip.is_global or any(ip in n for n in internal):
            continue
        public += 1
        for host in _spellings(ip, rng):
            assert netpolicy.resolve(host, 80, allow_private=False) == [ip], host


def _spellings(ip: ipaddress.IPv4Address, rng: random.Random) -> list[str]:
    n, parts = int(ip), [int(p) for p in str(ip).split(".")]
    octal = ".".join(f"0{p:o}" if rng.random() < 0.5 else str(p) for p in parts)
    hexa = ".".join(f"0x{p:x}" if rng.random() < 0.5 else str(p) for p in parts)
    return [str(ip), str(n), f"0x{n:x}", f"0{n:o}", octal, hexa,
            f"{parts[0]}.{n & 0xFFFFFF}", f"{parts[0]}.{parts[1]}.{n & 0xFFFF}"]


def test_the_add_report_counts_what_was_fetched_refused_or_failed(strict, site, public_127001, fake_embedder):
    """A URL the policy refused was counted as fetched ('1 URLs fetched'): each URL now counts as what
    happened to it, in `rag add`'s summary and in the chat's note, with plurals as they should be."""
    port = site.url.rsplit(":", 1)[1]
    refused = ingest.add_urls(strict, f"http://127.0.0.3:{port}/admin", embedder=fake_embedder)
    assert (refused.fetched, refused.refused, refused.fetch_failed) == (0, 1, 0)
    assert refused.lines()[-1] == ("0 added, 0 merged into existing stories, 0 updated, 0 duplicates, 1 error, "
                                   "0 unchanged, 0 links seen before, 0 URLs fetched, 1 refused by the fetch policy")
    assert ingest.url_result_note(refused) == "0 địa chỉ đã tải, 1 bị từ chối (chính sách tải: địa chỉ nội bộ)."

    body = "".join(f"<p>Đoạn {k}: hội đồng thành phố bàn về giao thông, trường học và bệnh viện năm 2025.</p>" for k in range(4))
    site.html("/bai.html", f"<html><head><title>Tin</title></head><body><article><h1>Tin</h1>{body}</article></body></html>")
    mixed = ingest.add_urls(strict, f"{site.url}/bai.html {site.url}/khong-co.html http://127.0.0.3:{port}/x "
                                    f"http://[::1]:{port}/y", embedder=fake_embedder)
    assert len(mixed.added) == 1 and (mixed.fetched, mixed.refused, mixed.fetch_failed) == (1, 2, 1)
    assert mixed.lines()[-1].endswith(", 3 errors, 0 unchanged, 0 links seen before, "
                                      "1 URL fetched, 2 refused by the fetch policy, 1 failed")
    assert ingest.url_result_note(mixed) == ("1 địa chỉ đã tải, 2 bị từ chối (chính sách tải: địa chỉ nội bộ), "
                                             "1 không tải được.")
    assert [p for p in site.paths_requested() if p != "/robots.txt"] == ["/bai.html", "/khong-co.html"]
