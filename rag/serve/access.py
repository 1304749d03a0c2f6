"""Who may use the server `rag serve` runs (the chat page, Gradio's API, /v1), issues 22 and 24.

- Users (rag.serve.users, HOME/users.json): each key reads and/or writes named collections. With any user (or
  RAG_API_KEY) configured, every request needs credentials: `Authorization: Bearer NAME.SECRET`, or HTTP
  Basic (user NAME, password NAME.SECRET: the browser's login prompt). RAG_API_KEY stays a key with every
  right (Bearer, or Basic with any user name). Wrong or missing credentials: 401. `Policy.who()` says who a
  request is (a rag.serve.users.Principal); the chat, Gradio's API and /v1 check its rights per collection (403).

- With RAG_API_KEY set, every request needs the key: `Authorization: Bearer <key>` (API clients,
  gradio_client via its headers=), or HTTP Basic with the key as the password (any user name: the
  browser asks for it once and sends it with every request of the page). /v1 checks the key itself, with
  OpenAI-style errors (rag.serve.openai_api). Keys are compared with hmac.compare_digest.
- Without a key, a server bound to anything but a loopback address serves questions but refuses
  whatever writes (uploads, adding URLs/feeds, removing articles): strangers on the network must not
  change the corpus or make the server fetch for them. On 127.0.0.1 (the default) all works as before.
- Logins (issue 32): a key not checked before is hashed (scrypt, tens of ms) in a worker thread, one at a time
  per client address, never on the event loop; each failure is logged, and an address with LOGIN_FAILURES
  failures in LOGIN_WINDOW seconds gets 429 at once, without hashing, until the window has passed (Logins).
  Credentials, once required, stay required: removing the last user leaves a server nobody can use.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import json
import logging
import time
import weakref
from pathlib import Path

from rag.serve import users as users_mod
from rag.errors import RagError
from rag.serve.users import Principal

REALM = "rag"
UPLOAD_PATH_SUFFIX = "/gradio_api/upload"  # Gradio's file upload route (writes files to disk)
WRITE_EVENTS = ("upload", "add_urls", "remove")  # the chat's corpus functions, also callable at /gradio_api/call/NAME
LOGIN_FAILURES, LOGIN_WINDOW = 20, 60.0  # wrong keys one address may send per window before it gets 429

log = logging.getLogger(__name__)


def is_loopback(host: str | None) -> bool:
    """True for a bind address only this machine can reach: 127.0.0.0/8, ::1, localhost."""
    host = (host or "").strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name (other than localhost), "", "0.0.0.0"-like wildcards are not loopback
        return False


def writes_allowed(host: str | None, api_key: str) -> bool:
    """May the chat's corpus tab write (upload, add URLs/feeds, remove)? On loopback, or behind a key."""
    return bool(api_key) or is_loopback(host)


WRITES_REFUSED = ("Thêm và xoá bài bị tắt: máy chủ này mở ra mạng mà không có khoá (đặt RAG_API_KEY, "
                  "hoặc chạy trên 127.0.0.1).")


NO_WRITE_RIGHTS = "Tài khoản này không có quyền thêm hay xoá bài trong bộ sưu tập «{}»."
NO_READ_RIGHTS = "Tài khoản này không có quyền đọc bộ sưu tập «{}»."


class Forbidden(RagError):
    """The request's key lacks the right it needs (the chat shows the message as it is)."""

    exit_code = 2


class UnsafeBind(RagError):
    """`rag serve` on a non-loopback address with nobody to check: refused unless --insecure."""

    exit_code = 2


def check_bind(host: str | None, policy: "Policy", insecure: bool = False) -> None:
    """Refuse to serve the network with no users and no RAG_API_KEY, unless the operator says --insecure."""
    if not is_loopback(host) and not policy.enabled() and not insecure:
        raise UnsafeBind(f"refusing to serve on {host}: it is open to the network and there are no users and no "
                         "RAG_API_KEY. Add a user (`rag users add NAME --read COLLECTIONS`), set RAG_API_KEY, or "
                         "pass --insecure (then anyone may ask and nobody may add or remove articles)")


def credentials(headers: dict[str, str]) -> tuple[str | None, str] | None:
    """(user name or None, key) from a Bearer token or HTTP Basic; None when there is none (or it is malformed)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer":
        return None, value
    if scheme == "basic":
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None
    return None


class Policy:
    """Who a request is: RAG_API_KEY (every right), a user's key (its rights), or, when neither is
    configured, anyone: every right on a loopback bind, reading only elsewhere (`rag serve --insecure`)."""

    def __init__(self, home: Path | None, api_key: str = "", host: str | None = "127.0.0.1"):
        self.users = users_mod.Users(Path(home)) if home is not None else None
        self.api_key, self.host = api_key, host
        self._required = False
        self.enabled()  # a server started with credentials requires them from the first request on

    def enabled(self) -> bool:
        """Are credentials required? (RAG_API_KEY set, or users in HOME/users.json.) Once they are, for good:
        removing the last user of a running server then means that nobody gets in, not everybody."""
        self._required = self._required or bool(self.api_key) or (self.users is not None and self.users.any())
        return self._required

    def who(self, headers: dict[str, str], *, hash_keys: bool = True):
        """The request's principal, or None: credentials required but missing or wrong (401). With
        hash_keys=False, users.UNCHECKED for a user key that would need scrypt (see Gate)."""
        if not self.enabled():
            return users_mod.EVERYTHING("local") if is_loopback(self.host) else users_mod.READ_ONLY("anyone")
        given = credentials({k.lower(): v for k, v in headers.items()})
        if given is None:
            return None
        user, key = given
        if self.api_key and hmac.compare_digest(key.encode(), self.api_key.encode()):
            return users_mod.EVERYTHING("admin")
        return self.users.check(key, user, hash_key=hash_keys) if self.users is not None else None


def key_given(headers: dict[str, str], api_key: str) -> bool:
    """Does this request carry the key, as a Bearer token or as the password of HTTP Basic?"""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme != "bearer":
        return False
    return hmac.compare_digest(value.encode(), api_key.encode())


class Gate:
    """ASGI middleware for the whole server: credentials checked (Policy.who) on every route, a key not checked
    before hashed off the event loop and failures limited per client address (Logins); Gradio's upload route
    refused to whoever may write nowhere. /v1 answers its own errors in OpenAI's shape (rag.serve.openai_api), with
    the keys it sees here already checked."""

    def __init__(self, app, *, api_key: str = "", allow_writes: bool = True, policy: Policy | None = None,
                 logins: "Logins | None" = None):
        self.app = app
        self.policy = policy or Policy(None, api_key, "127.0.0.1" if allow_writes else "0.0.0.0")
        self.logins = logins or Logins()

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        v1 = path == "/v1" or path.startswith("/v1/")
        who = self.policy.who(headers, hash_keys=False)
        if who is users_mod.UNCHECKED:
            client = (scope.get("client") or ("unknown",))[0]
            route = f"{scope.get('method', 'websocket')} {path}"
            try:
                who = await self.logins.check(client, lambda: self.policy.who(headers), route)
            except TooManyFailures as e:
                return await _refuse(scope, receive, send, 429, str(e), "rate_limit_exceeded",
                                     {"retry-after": str(e.wait)})
            if who is None and v1:  # /v1 would hash the wrong key again, on the event loop: refused here
                return await _refuse(scope, receive, send, 401, "missing or wrong API key: send 'Authorization: "
                                     "Bearer <key>' (a user's key or RAG_API_KEY)", "invalid_api_key", {})
        if v1:
            return await self.app(scope, receive, send)
        if who is None:
            return await _refuse(scope, receive, send, 401, "missing or wrong API key: send 'Authorization: Bearer "
                                 "<key>' (a browser asks for it: your user name and key, or any user name and "
                                 "RAG_API_KEY)", "invalid_api_key",
                                 {"www-authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})
        if not who.writes_anything and _writes(path):
            reason = ("this key may not write to any collection" if self.policy.enabled() else
                      "uploads are off on a server open to the network without users or RAG_API_KEY")
            return await _refuse(scope, receive, send, 403, reason, "writes_disabled", {})
        return await self.app(scope, receive, send)


class TooManyFailures(RagError):
    """An address sent too many wrong keys lately (429); `wait`: seconds until it may try again."""

    def __init__(self, wait: int):
        super().__init__(f"too many wrong keys from this address: try again in {wait} s")
        self.wait = wait


class Logins:
    """Key checks that need scrypt, for the server's event loop: run in a worker thread, one at a time per
    client address (a flood of wrong keys queues behind itself, not in front of other callers), each failure
    logged (the address and route, never the key), and an address with `limit` failures in the last `window`
    seconds refused (TooManyFailures: 429) without hashing until the oldest of them is that old."""

    def __init__(self, limit: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, list[float]] = {}  # address -> times of its recent failures, oldest first
        self._turns: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def check(self, client: str, verify, route: str = ""):
        """verify() (a Principal, or None for wrong credentials), in a worker thread; TooManyFailures instead
        while the address is over its limit."""
        self._refuse_if_over(client)
        turn = self._turns.get(client)
        if turn is None:
            turn = self._turns[client] = asyncio.Lock()
        async with turn:
            self._refuse_if_over(client)  # the failures of those it queued behind count
            who = await asyncio.to_thread(verify)
            if who is None:
                self._failed(client, route)
        return who

    def _recent(self, client: str) -> list[float]:
        since = self.clock() - self.window
        recent = [t for t in self._failures.get(client, ()) if t > since]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        return recent

    def _refuse_if_over(self, client: str) -> None:
        recent = self._recent(client)
        if len(recent) >= self.limit:
            raise TooManyFailures(max(1, int(recent[-self.limit] + self.window - self.clock() + 0.999)))

    def _failed(self, client: str, route: str) -> None:
        recent = self._recent(client) + [self.clock()]
        self._failures[client] = recent
        log.warning("wrong key from %s for %s (%d in the last %.0f s%s)", client, route, len(recent), self.window,
                    "; refusing it until they are older" if len(recent) >= self.limit else "")
        if len(self._failures) > 10_000:  # many addresses: forget those whose failures are all old
            for address in list(self._failures):
                self._recent(address)


def _writes(path: str) -> bool:
    """Gradio's upload route, or a direct API call of one of the corpus functions (the page's own calls go
    through the queue: those functions check the key's write right on the chosen collection themselves)."""
    if path.endswith(UPLOAD_PATH_SUFFIX):
        return True
    parts = path.rstrip("/").split("/")
    return any(parts[i:i + 2] in (["call", n], ["run", n]) for n in WRITE_EVENTS for i in range(len(parts) - 1))


async def _refuse(scope, receive, send, status: int, message: str, code: str, extra: dict[str, str]) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                 "code": code}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
