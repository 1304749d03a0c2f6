"""Who may use the server `rag serve` runs (the chat page, Gradio's API, /v1), issues 22 and 24.

- Users (rag.users, HOME/users.json): each key reads and/or writes named collections. With any user (or
  RAG_API_KEY) configured, every request needs credentials: `Authorization: Bearer NAME.SECRET`, or HTTP
  Basic (user NAME, password NAME.SECRET: the browser's login prompt). RAG_API_KEY stays a key with every
  right (Bearer, or Basic with any user name). Wrong or missing credentials: 401. `Policy.who()` says who a
  request is (a rag.users.Principal); the chat, Gradio's API and /v1 check its rights per collection (403).

- With RAG_API_KEY set, every request needs the key: `Authorization: Bearer <key>` (API clients,
  gradio_client via its headers=), or HTTP Basic with the key as the password (any user name: the
  browser asks for it once and sends it with every request of the page). /v1 checks the key itself, with
  OpenAI-style errors (rag.openai_api). Keys are compared with hmac.compare_digest.
- Without a key, a server bound to anything but a loopback address serves questions but refuses
  whatever writes (uploads, adding URLs/feeds, removing articles): strangers on the network must not
  change the corpus or make the server fetch for them. On 127.0.0.1 (the default) all works as before.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
from pathlib import Path

from rag import users as users_mod
from rag.errors import RagError
from rag.users import Principal

REALM = "rag"
UPLOAD_PATH_SUFFIX = "/gradio_api/upload"  # Gradio's file upload route (writes files to disk)
WRITE_EVENTS = ("upload", "add_urls", "remove")  # the chat's corpus functions, also callable at /gradio_api/call/NAME


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

    def enabled(self) -> bool:
        """Are credentials required? (RAG_API_KEY set, or users in HOME/users.json)"""
        return bool(self.api_key) or (self.users is not None and self.users.any())

    def who(self, headers: dict[str, str]) -> Principal | None:
        """The request's principal, or None: credentials required but missing or wrong (401)."""
        if not self.enabled():
            return users_mod.EVERYTHING("local") if is_loopback(self.host) else users_mod.READ_ONLY("anyone")
        given = credentials({k.lower(): v for k, v in headers.items()})
        if given is None:
            return None
        user, key = given
        if self.api_key and hmac.compare_digest(key.encode(), self.api_key.encode()):
            return users_mod.EVERYTHING("admin")
        return self.users.check(key, user) if self.users is not None else None


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
    """ASGI middleware for the whole server: credentials checked (Policy.who) for everything but /v1, which
    answers in OpenAI's shape itself; Gradio's upload route refused to whoever may write nowhere."""

    def __init__(self, app, *, api_key: str = "", allow_writes: bool = True, policy: Policy | None = None):
        self.app = app
        self.policy = policy or Policy(None, api_key, "127.0.0.1" if allow_writes else "0.0.0.0")

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if path == "/v1" or path.startswith("/v1/"):
            return await self.app(scope, receive, send)
        who = self.policy.who(headers)
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
