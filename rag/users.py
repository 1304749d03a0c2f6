"""Users and their rights (issue 24): keys that may read and/or write named collections.

Kept in HOME/users.json (mode 0600, written atomically): for each user a per-user random salt, the scrypt
hash of the secret (never the secret), and the collections it may read and write ("*": all of them,
including ones created later). Write implies read. A key looks like `NAME.SECRET`: the name says which
record to check, the secret is 32 random bytes (url-safe base64). It is printed once, by `rag users add`.

Requests carry it as `Authorization: Bearer NAME.SECRET` (API clients) or as HTTP Basic with user NAME and
password NAME.SECRET (the browser's login prompt). Checks use hmac.compare_digest on the scrypt hashes.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rag import collections
from rag.errors import RagError

FILE = "users.json"
ALL = "*"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}  # ~16 MB and a few tens of ms per check


class UserError(RagError, ValueError):
    exit_code = 2


@dataclass(frozen=True)
class Principal:
    """Who a request is, and what it may do. `read`/`write`: collection names, or ALL."""

    name: str
    read: frozenset = field(default_factory=frozenset)
    write: frozenset = field(default_factory=frozenset)

    def can_read(self, collection: str) -> bool:
        return self.can_write(collection) or ALL in self.read or collection in self.read

    def can_write(self, collection: str) -> bool:
        return ALL in self.write or collection in self.write

    @property
    def writes_anything(self) -> bool:
        return bool(self.write)


EVERYTHING = lambda name: Principal(name, frozenset({ALL}), frozenset({ALL}))  # noqa: E731
READ_ONLY = lambda name: Principal(name, frozenset({ALL}), frozenset())  # noqa: E731


def path(home: Path) -> Path:
    return Path(home) / FILE


def _rights(value: str | None) -> list[str]:
    """`--read a,b` as a list of collection names (checked), or ["*"]."""
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    return [ALL] if ALL in items else [collections.check_name(v) for v in items]


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)


def load(home: Path) -> dict:
    """{name: record}; {} when there is no file. A file that is not ours is an error, not 'no users'."""
    p = path(home)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {p}: {e}") from e
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise UserError(f"{p} is not a users file (no 'users' object)")
    return users


def _save(home: Path, users: dict) -> None:
    """Atomically: a temporary file in the same folder, mode 0600 from the start, fsync'd, then renamed."""
    p = path(home)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE}.", dir=p.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "users": users}, f, ensure_ascii=False, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Locked:
    """An exclusive lock on HOME/users.json.lock around a read-modify-write."""

    def __init__(self, home: Path):
        self.lock = path(home).with_suffix(".json.lock")

    def __enter__(self):
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.lock, "w")
        fcntl.flock(self.fh, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        self.fh.close()


def add(home: Path, name: str, *, read: str | None = None, write: str | None = None) -> str:
    """Create a user; returns its key (NAME.SECRET), which is stored nowhere but its hash."""
    collections.check_name(name)
    record = {"read": _rights(read), "write": _rights(write)}
    if not record["read"] and not record["write"]:
        raise UserError("give the user some rights: --read a,b and/or --write a (or '*' for all collections)")
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    record |= {"salt": salt.hex(), "scrypt": _hash(secret, salt).hex(),
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with _Locked(home):
        users = load(home)
        if name in users:
            raise UserError(f"the user {name!r} already exists: `rag users remove {name}` first to give a new key")
        _save(home, users | {name: record})
    return f"{name}.{secret}"


def remove(home: Path, name: str) -> None:
    with _Locked(home):
        users = load(home)
        if name not in users:
            raise UserError(f"no user {name!r} in {path(home)}")
        del users[name]
        _save(home, users)


def listing(home: Path) -> list[dict]:
    """Names and rights, never the hashes."""
    return [{"name": n, "read": r.get("read", []), "write": r.get("write", []), "created": r.get("created")}
            for n, r in sorted(load(home).items())]


class Users:
    """The users file as the server sees it: re-read when it changes (so `rag users add` works while the
    server runs), keys checked against it. Successful checks are remembered by a keyed digest of the key
    (in memory only), so a page's dozens of requests do not each pay scrypt."""

    def __init__(self, home: Path):
        self.file = path(home)
        self._stamp, self._users = None, {}
        self._ok: dict[bytes, Principal] = {}
        self._pepper = secrets.token_bytes(32)
        self._lock = threading.Lock()

    def _current(self) -> dict:
        try:
            st = self.file.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._users = load(self.file.parent) if stamp else {}
                self._stamp, self._ok = stamp, {}
            return self._users

    def any(self) -> bool:
        return bool(self._current())

    def check(self, key: str, user: str | None = None) -> Principal | None:
        """The user whose key this is (and, for HTTP Basic, whose name was given), or None."""
        users = self._current()
        name, dot, secret = (key or "").partition(".")
        if not dot or not secret or (user is not None and user != name) or name not in users:
            return None
        memo = hmac.new(self._pepper, key.encode(), "sha256").digest()
        with self._lock:
            if memo in self._ok:
                return self._ok[memo]
        record = users[name]
        try:
            want, salt = bytes.fromhex(record["scrypt"]), bytes.fromhex(record["salt"])
        except (KeyError, ValueError, TypeError):
            return None
        if not hmac.compare_digest(_hash(secret, salt), want):
            return None
        who = Principal(name, frozenset(record.get("read", [])), frozenset(record.get("write", [])))
        with self._lock:
            self._ok[memo] = who
        return who
