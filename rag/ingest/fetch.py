"""Polite, robust HTTP GET for web pages, feeds and sitemaps.

httpx (already installed with gradio) rather than urllib: redirects are followed by hand here (a hop
limit, loop detection and a robots.txt check on every hop), the body is streamed so the size cap holds
without reading it all, and connect/read timeouts are per step. Per URL:
- robots.txt of its origin is fetched once with the same client and obeyed (urllib.robotparser rules;
  a missing robots.txt allows all, an unreachable or failing one disallows, as RFC 9309 says);
- requests to one host are spaced by `fetch_delay` seconds (or the site's Crawl-delay if longer);
- the User-Agent names the project;
- conditional GET: the ETag / Last-Modified of the last good response are sent back, and a 304 comes
  back as `Fetched.not_modified` with no body; the caller commits new validators (`FetchState.remember`)
  only once it has used the body, so a failure after the download is retried next time;
- timeouts, connection errors, 429 and 5xx are retried with exponential backoff;
- every URL, redirect and connection goes through `rag.ingest.netpolicy` (no loopback, private, link-local...
  addresses unless RAG_FETCH_ALLOW_PRIVATE=1; the connection is made to the address that was checked);
- one response gets `fetch_max_seconds` in total and `fetch_max_bytes`, whatever the per-read timeouts;
- anything else (4xx, a disallowed path, too big, wrong content type, too many redirects or a loop)
  raises FetchError for that URL only.
"""
from __future__ import annotations

import json
import time
import urllib.robotparser
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from rag.ingest import netpolicy
from rag.config import Settings
from rag.ingest.corpus import atomic_write, load_state
from rag.errors import FetchError

HTML_TYPES = ("text/html", "application/xhtml+xml")
XML_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml", "text/xml", "application/rdf+xml")
_REDIRECTS = (301, 302, 303, 307, 308)
_RETRY_STATUS = (429, 500, 502, 503, 504)
_REFUSED = "refused: "  # how a fetch-policy refusal (rag.ingest.netpolicy) starts
_MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After is treated as a failure, not waited for


@dataclass
class Fetched:
    url: str  # as asked
    final_url: str  # after redirects
    status: int  # 200, or 304 when not modified
    content: bytes  # empty when not modified
    content_type: str  # media type, lower case, without parameters ("" if the server sent none)
    charset: str | None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class FetchState:
    """ETag / Last-Modified per URL, in a small JSON file written atomically."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.validators: dict[str, dict]
        self.validators, self.warning = load_state(self.path, _valid_validators, "fetch state")

    def headers(self, url: str) -> dict[str, str]:
        v = self.validators.get(url, {})
        out = {}
        if v.get("etag"):
            out["If-None-Match"] = v["etag"]
        if v.get("last_modified"):
            out["If-Modified-Since"] = v["last_modified"]
        return out

    def remember(self, fetched: Fetched) -> None:
        if fetched.not_modified or not (fetched.etag or fetched.last_modified):
            return
        self.validators[fetched.url] = {"etag": fetched.etag, "last_modified": fetched.last_modified}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(self.validators, ensure_ascii=False, indent=1).encode("utf-8"))


class Fetcher:
    """One client for a batch: robots.txt and per-host timing are remembered across its URLs."""

    def __init__(self, settings: Settings, state: FetchState | None = None, *, sleep=time.sleep, clock=time.monotonic):
        self.settings = settings
        self.state = state
        self._sleep, self._clock = sleep, clock
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self._robots_failed: dict[str, str] = {}  # origin -> why its robots.txt could not be read
        self._last: dict[str, float] = {}  # host -> when its last request started
        self._overran = False  # the last request ran past fetch_max_seconds
        self._client = httpx.Client(
            headers={"User-Agent": settings.user_agent},
            timeout=httpx.Timeout(settings.fetch_timeout),
            follow_redirects=False,
            transport=_guarded_transport(settings.fetch_allow_private),
            trust_env=False,  # an environment proxy would connect for us, to addresses the policy never saw
        )

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, accept: tuple[str, ...] = HTML_TYPES + XML_TYPES) -> Fetched:
        """GET `url` following redirects; raises FetchError with the reason. `accept`: media types allowed."""
        self._check_url(url)
        current, seen = url, [url]
        conditional = self.state.headers(url) if self.state else {}
        for _ in range(self.settings.fetch_max_redirects + 1):
            self._check_robots(current, url)
            response = self._request(current, conditional if current == url else {})
            if response.status_code in _REDIRECTS and "location" in response.headers:
                target = urljoin(current, response.headers["location"])
                self._check_url(target, url)
                if target in seen:
                    raise FetchError(url, "redirect loop: " + " → ".join(seen + [target]))
                seen.append(target)
                current = target
                continue
            return self._result(url, current, response, accept)
        raise FetchError(url, f"more than {self.settings.fetch_max_redirects} redirects: " + " → ".join(seen))

    # ---------------------------------------------------------------- internals

    def _request(self, url: str, headers: dict[str, str]) -> _Response:
        """One GET with retries; the body is read here, up to the size cap."""
        s = self.settings
        for attempt in range(s.fetch_retries + 1):
            self._wait_turn(url)
            retry_after = None
            try:
                response = self._read(url, headers)
                if response.status_code not in _RETRY_STATUS:
                    return response
                problem = f"HTTP {response.status_code}"
                retry_after = _retry_after(response.headers.get("retry-after"))
            except netpolicy.Refused as e:  # from the connection itself: the name resolved differently
                raise FetchError(url, _REFUSED + e.reason, refused=True) from None
            except httpx.TimeoutException:
                if self._overran:
                    raise FetchError(url, f"took longer than {s.fetch_max_seconds:g} s in total (RAG_FETCH_MAX_SECONDS)") from None
                problem = f"timed out (no response within {s.fetch_timeout:g} s)"
            except httpx.TransportError as e:
                problem = f"connection failed: {e or type(e).__name__}"
            if attempt == s.fetch_retries:
                raise FetchError(url, f"{problem}, after {attempt + 1} tries")
            self._sleep(retry_after if retry_after is not None else s.fetch_backoff * 2**attempt)
        raise AssertionError("unreachable")

    def _read(self, url: str, headers: dict[str, str]) -> _Response:
        cap = self.settings.fetch_max_bytes
        deadline = time.monotonic() + self.settings.fetch_max_seconds
        self._overran = False
        token = netpolicy.DEADLINE.set(deadline)
        try:
            return self._read_within(url, headers, cap)
        finally:
            netpolicy.DEADLINE.reset(token)
            self._overran = time.monotonic() >= deadline

    def _read_within(self, url: str, headers: dict[str, str], cap: int) -> _Response:
        with self._client.stream("GET", url, headers=headers) as r:
            declared = r.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise FetchError(url, f"response is {int(declared):,} bytes; the limit is {cap:,}")
            body = bytearray()
            if r.status_code == 200:
                for piece in r.iter_bytes():
                    body += piece
                    if len(body) > cap:
                        raise FetchError(url, f"response is larger than the limit of {cap:,} bytes")
            return _Response(r.status_code, r.reason_phrase, r.headers, bytes(body))

    def _result(self, asked: str, final: str, r: _Response, accept: tuple[str, ...]) -> Fetched:
        ctype, charset = _content_type(r.headers.get("content-type", ""))
        fetched = Fetched(asked, final, r.status_code, r.body, ctype, charset, r.headers.get("etag"), r.headers.get("last-modified"))
        if r.status_code == 304:
            return fetched
        if r.status_code != 200:
            raise FetchError(asked, f"HTTP {r.status_code} {r.reason}".rstrip() + (f" (at {final})" if final != asked else ""))
        if ctype and ctype not in accept:
            raise FetchError(asked, f"content type {ctype} is not one of {', '.join(accept)}")
        if not ctype and not r.body.lstrip()[:1] == b"<":
            raise FetchError(asked, "no content type and the body is not markup")
        return fetched

    def _wait_turn(self, url: str) -> None:
        host = urlsplit(url).netloc
        delay = self.settings.fetch_delay
        robots = self._robots.get(_origin(url))
        if robots is not None:
            delay = max(delay, float(robots.crawl_delay(self.settings.user_agent) or 0))
        if host in self._last:
            wait = self._last[host] + delay - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last[host] = self._clock()

    def _check_url(self, url: str, asked: str | None = None) -> None:
        """http(s) and an address the policy allows; `asked`: the URL asked for, when `url` is a redirect."""
        try:
            netpolicy.check_url(url, self.settings.fetch_allow_private)
        except netpolicy.Refused as e:
            reason = "not an http(s) URL" if e.reason == "not an http(s) URL" else _REFUSED + e.reason
            raise FetchError(asked or url, f"redirects to {url}, {reason}" if asked else reason, refused=True) from None

    def _check_robots(self, url: str, asked: str) -> None:
        origin = _origin(url)
        if origin not in self._robots:
            try:
                self._robots[origin] = self._load_robots(origin)
            except FetchError as e:  # the policy refused the connection: that, not robots.txt, is the reason
                raise FetchError(asked, e.reason, refused=e.refused) from None
        if origin in self._robots_failed:
            raise FetchError(asked, f"robots.txt of {origin} could not be read ({self._robots_failed[origin]}), so nothing there is fetched")
        if not self._robots[origin].can_fetch(self.settings.user_agent, url):
            raise FetchError(asked, f"robots.txt of {origin} disallows {urlsplit(url).path or '/'}")

    def _load_robots(self, origin: str) -> urllib.robotparser.RobotFileParser:
        parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
        try:
            r = self._request(origin + "/robots.txt", {})
        except FetchError as e:  # unreachable: assume complete disallow (RFC 9309 2.3.1.4)
            if e.refused:
                raise
            self._robots_failed[origin] = e.reason
            return parser
        if r.status_code >= 500:
            self._robots_failed[origin] = f"HTTP {r.status_code}"
        elif r.status_code >= 400:
            parser.allow_all = True  # no robots.txt: no rules
        else:
            parser.parse(r.body.decode("utf-8", "replace").splitlines())
        return parser


@dataclass
class _Response:
    status_code: int
    reason: str
    headers: httpx.Headers
    body: bytes


def _guarded_transport(allow_private: bool) -> httpx.HTTPTransport:
    """httpx's transport with its connection pool on netpolicy.GuardedBackend. httpx has no public
    parameter for httpcore's network backend; the pool reads this attribute for every new connection
    (tests/test_fetch_policy.py fails if a release changes that)."""
    transport = httpx.HTTPTransport()
    transport._pool._network_backend = netpolicy.GuardedBackend(allow_private)
    return transport


def _valid_validators(data: dict) -> bool:
    """{url: {"etag": str | None, "last_modified": str | None}}, as FetchState.remember writes it."""
    return all(
        isinstance(url, str) and isinstance(v, dict) and all(isinstance(v.get(k), (str, type(None))) for k in ("etag", "last_modified"))
        for url, v in data.items()
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _content_type(header: str) -> tuple[str, str | None]:
    media, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit() and float(value) <= _MAX_RETRY_AFTER:
        return float(value)
    return None
