"""Who may use the server `rag serve` runs (the chat page, Gradio's API, /v1), issue 22.

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

REALM = "rag"
UPLOAD_PATH_SUFFIX = "/gradio_api/upload"  # Gradio's file upload route (writes files to disk)


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
    """ASGI middleware for the whole server: the key check above (except /v1, which answers in OpenAI's
    shape itself), and Gradio's upload route refused when writes are not allowed."""

    def __init__(self, app, *, api_key: str, allow_writes: bool):
        self.app, self.api_key, self.allow_writes = app, api_key, allow_writes

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.api_key and not (path == "/v1" or path.startswith("/v1/")) and not key_given(headers, self.api_key):
            return await _refuse(scope, receive, send, 401, "missing or wrong API key: send 'Authorization: Bearer "
                                 "<RAG_API_KEY>' (a browser asks for it: any user name, the key as password)",
                                 "invalid_api_key", {"www-authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})
        if not self.allow_writes and path.endswith(UPLOAD_PATH_SUFFIX):
            return await _refuse(scope, receive, send, 403, "uploads are off on a server open to the network "
                                 "without RAG_API_KEY", "writes_disabled", {})
        return await self.app(scope, receive, send)


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
