"""Users and their rights (issue 24): keys that may read and/or write named collections.

Kept in HOME/users.json (mode 0600, written atomically): for each user a per-user random salt, the scrypt
hash of the secret (never the secret), and the collections it may read and write ("*": all of them,
including ones created later). Write implies read. A key looks like `NAME.SECRET`: the name says which
record to check, the secret is 32 random bytes (url-safe base64). It is printed once, by `rag users add`.

Requests carry it as `Authorization: Bearer NAME.SECRET` (API clients) or as HTTP Basic with user NAME and
password NAME.SECRET (the browser's login prompt). Checks use hmac.compare_digest on the scrypt hashes; a key
naming no user costs the same scrypt (of a dummy salt), so the time a check takes does not tell which names exist.
The file is checked whole when it is read (UserError naming the user and the field): a hand edit such as
`"read": "default"` must not grant the collections d, e, f, a, u, l, t.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rag.index import collections
from rag.errors import RagError

FILE = "users.json"
ALL = "*"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}  # ~16 MB and a few tens of ms per check
_DUMMY_SALT = secrets.token_bytes(16)  # hashed for a key naming no user: unknown names cost what known ones do
_HEX = re.compile(r"(?:[0-9a-f]{2})+")

log = logging.getLogger(__name__)


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


def check_name(name) -> str:
    """The name if it is a valid user name (the rule of collection names); UserError saying what is allowed."""
    try:
        return collections.check_name(name)
    except collections.CollectionError:
        raise UserError(f"invalid user name {name!r}: {collections.NAME_RULE}") from None


def _rights(value: str | None) -> list[str]:
    """`--read a,b` as a list of collection names (checked), or ["*"]."""
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    return [ALL] if ALL in items else [collections.check_name(v) for v in items]


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)


def load(home: Path) -> dict:
    """{name: record}, each record checked; {} when there is no file. A file that is not ours, or a record
    that is not right, is an error (UserError naming the user and the field), not 'no users'. A file other
    users may read (their scrypt hashes could be attacked offline) is used, with a warning."""
    p = path(home)
    try:
        with p.open(encoding="utf-8") as f:
            mode = os.fstat(f.fileno()).st_mode
            data = json.loads(f.read())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {p}: {e}") from e
    if mode & 0o044:
        log.warning(f"warning: {p} may be read by other users of this machine (mode {mode & 0o777:o}): "
                    f"`chmod 600 {p}`")
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise UserError(f"{p} is not a users file (no 'users' object)")
    for name, record in users.items():
        _check_record(p, name, record)
    return users


def _check_record(p: Path, name: str, record) -> None:
    """UserError naming the user and the field when a record (as `add` writes it, or edited by hand) is not right."""
    def bad(what: str) -> UserError:
        return UserError(f"{p}: user {name!r}: {what}; fix it, or `rag users remove {name}` and add it again")

    try:
        check_name(name)
    except UserError as e:
        raise bad(str(e)) from None
    if not isinstance(record, dict):
        raise bad(f"the record must be an object, not {record!r}")
    for right in ("read", "write"):
        value = record.get(right, [])
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise bad(f"'{right}' must be a list of collection names (or [\"*\"]), not {value!r}")
        for c in value:
            if c != ALL:
                try:
                    collections.check_name(c)
                except collections.CollectionError as e:
                    raise bad(f"'{right}': {e}") from None
    if not isinstance(record.get("salt"), str) or not _HEX.fullmatch(record["salt"]):
        raise bad("'salt' must be lowercase hex digits")  # (neither salt nor hash is echoed: they stay in the file)
    if not isinstance(record.get("scrypt"), str) or not _HEX.fullmatch(record["scrypt"]) \
            or len(record["scrypt"]) != 2 * _SCRYPT["dklen"]:
        raise bad(f"'scrypt' must be {2 * _SCRYPT['dklen']} lowercase hex digits")


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
    check_name(name)
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


def remove(home: Path, name: str) -> int:
    """Remove a user (its key stops working at once); returns how many users are left."""
    with _Locked(home):
        users = load(home)
        if name not in users:
            raise UserError(f"no user {name!r} in {path(home)}")
        del users[name]
        _save(home, users)
    return len(users)


def listing(home: Path) -> list[dict]:
    """Names and rights, never the hashes."""
    return [{"name": n, "read": r.get("read", []), "write": r.get("write", []), "created": r.get("created")}
            for n, r in sorted(load(home).items())]


UNCHECKED = object()  # Users.check(hash_key=False): a key that would need scrypt to tell


class Users:
    """The users file as the server sees it: re-read when it changes (so `rag users add` works while the
    server runs), keys checked against it. Successful checks are remembered by a keyed digest of the key
    (in memory only), so a page's dozens of requests do not each pay scrypt. An invalid file stops the
    server from starting (UserError); made invalid while it runs, it is logged and lets nobody in until fixed."""

    def __init__(self, home: Path):
        self.file = path(home)
        self._ok: dict[bytes, Principal] = {}
        self._pepper = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()  # before reading: a change in between is read again at the next check
        self._users: dict | None = load(home)

    def _file_stamp(self):
        try:
            st = self.file.stat()
            return st.st_mtime_ns, st.st_size, st.st_ino
        except FileNotFoundError:
            return None

    def _current(self) -> tuple[dict | None, dict]:
        """(the users, or None while the file is invalid; the memo of keys checked against them)."""
        stamp = self._file_stamp()
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._users = load(self.file.parent) if stamp else {}
                except UserError as e:
                    log.error("%s; until then no user's key is accepted", e)
                    self._users = None
                self._stamp, self._ok = stamp, {}
            return self._users, self._ok

    def any(self) -> bool:
        """Are there users (or a users file, invalid now, that had them)?"""
        return self._current()[0] != {}

    def check(self, key: str, user: str | None = None, *, hash_key: bool = True):
        """The user whose key this is (and, for HTTP Basic, whose name was given), or None. A key not checked
        before costs one scrypt (tens of ms) whether or not it names a user, so names do not leak by timing;
        with hash_key=False such a key is not hashed and UNCHECKED comes back (for rag.serve.access.Gate, which
        hashes off the event loop)."""
        users, ok = self._current()
        name, dot, secret = (key or "").partition(".")
        memo = hmac.new(self._pepper, (key or "").encode(), "sha256").digest()
        with self._lock:
            who = ok.get(memo)
        if who is not None and user in (None, name):
            return who
        if not hash_key:
            return UNCHECKED
        record = (users or {}).get(name) if dot and secret and user in (None, name) else None
        digest = _hash(secret, bytes.fromhex(record["salt"]) if record else _DUMMY_SALT)
        if record is None or not hmac.compare_digest(digest, bytes.fromhex(record["scrypt"])):
            return None
        who = Principal(name, frozenset(record.get("read", [])), frozenset(record.get("write", [])))
        with self._lock:
            ok[memo] = who  # the memo of the file as read above: a key removed since is not remembered
        return who
