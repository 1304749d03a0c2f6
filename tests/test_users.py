"""Users and logins (issue 32): a users file edited by hand is checked when it is read, a key is hashed off the
event loop and costs the same scrypt whether or not its name exists, wrong keys are logged and limited per
client address, and a server started with users keeps asking for keys when the last one is removed. No model
loads: the users file in a temporary folder, rag.serve.access.Gate around a tiny ASGI app."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading

import pytest
from fastapi.testclient import TestClient

from rag import cli
from rag.serve import access, users


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def count_hashes(monkeypatch) -> list:
    """users._hash, counted (and still the real scrypt)."""
    calls, real = [], users._hash
    monkeypatch.setattr(users, "_hash", lambda secret, salt: calls.append(salt) or real(secret, salt))
    return calls


# ---------------------------------------------------------------- names and the users file


def test_a_bad_user_name_is_called_a_user_name(home, capsys):
    with pytest.raises(users.UserError, match="invalid user name 'ev il'"):
        users.add(home, "ev il", read="a")
    assert cli.main(["--home", str(home), "users", "add", "ev il", "--read", "a"]) == 2
    err = capsys.readouterr().err
    assert "invalid user name 'ev il'" in err and "invalid collection name" not in err


def write_users(home, **records) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "users.json").write_text(json.dumps({"version": 1, "users": records}))
    os.chmod(home / "users.json", 0o600)


GOOD = {"read": ["a"], "write": [], "salt": "00" * 16, "scrypt": "ab" * 32}


@pytest.mark.parametrize("record, field", [
    (GOOD | {"read": "default"}, "'read'"),  # a string: it used to grant the collections d, e, f, a, u, l, t
    (GOOD | {"write": ["../x"]}, "'write'"),
    (GOOD | {"read": [1]}, "'read'"),
    ({k: v for k, v in GOOD.items() if k != "salt"}, "'salt'"),
    (GOOD | {"scrypt": "abc"}, "'scrypt'"),
    ("alice", "record"),
])
def test_a_hand_edited_users_file_is_checked_when_read(home, record, field, capsys):
    write_users(home, bob=GOOD, alice=record)
    with pytest.raises(users.UserError, match=f"user 'alice': .*{field}"):
        users.load(home)
    assert cli.main(["--home", str(home), "users", "list"]) == 2  # one clear error, not a crash
    err = capsys.readouterr().err
    assert err.startswith("error:") and "'alice'" in err and field in err and "a bug" not in err
    with pytest.raises(users.UserError):  # a server does not start with it
        access.Policy(home, "", "127.0.0.1")


def test_a_user_name_that_is_not_a_name_is_refused_in_the_file(home):
    write_users(home, **{"ev il": GOOD})
    with pytest.raises(users.UserError, match="invalid user name 'ev il'"):
        users.load(home)


def test_a_users_file_others_may_read_is_used_with_a_warning(home, caplog):
    key = users.add(home, "alice", read="a")
    with caplog.at_level(logging.WARNING, logger="rag.serve.users"):
        users.load(home)
    assert not caplog.records
    os.chmod(home / "users.json", 0o644)
    with caplog.at_level(logging.WARNING, logger="rag.serve.users"):
        assert users.Users(home).check(key).can_read("a")
    assert "may be read by other users" in caplog.text and "chmod 600" in caplog.text
    assert key.split(".")[1] not in caplog.text


def test_a_users_file_broken_while_the_server_runs_lets_nobody_in(home, caplog):
    key = users.add(home, "alice", read="a")
    policy = access.Policy(home, "", "127.0.0.1")
    assert policy.who(bearer(key)).can_read("a")
    stored = users.load(home)
    write_users(home, alice=stored["alice"] | {"read": "a"}, bob=GOOD)
    with caplog.at_level(logging.ERROR, logger="rag.serve.users"):
        assert policy.who(bearer(key)) is None and policy.who({}) is None
    assert "user 'alice': 'read'" in caplog.text


# ---------------------------------------------------------------- the last user


def test_removing_the_last_user_leaves_a_server_nobody_can_use(home, capsys):
    key = users.add(home, "alice", read="a", write="a")
    for host in ("127.0.0.1", "0.0.0.0"):
        policy = access.Policy(home, "", host)  # the server, started with a user
        gate = TestClient(access.Gate(ok_app, policy=policy))
        assert gate.get("/", headers=bearer(key)).status_code == 200
        users.remove(home, "alice")
        assert policy.enabled()
        assert policy.who({}) is None and policy.who(bearer(key)) is None  # nobody, not everybody
        assert gate.get("/").status_code == 401 and gate.get("/", headers=bearer(key)).status_code == 401
        key = users.add(home, "alice", read="a", write="a")
    assert cli.main(["--home", str(home), "users", "remove", "alice"]) == 0
    err = capsys.readouterr().err
    assert "warning: that was the last user" in err and "nobody" in err
    users.add(home, "alice", read="a")
    users.add(home, "bob", read="a")
    assert cli.main(["--home", str(home), "users", "remove", "alice"]) == 0
    assert "last user" not in capsys.readouterr().err


# ---------------------------------------------------------------- logins


async def ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_an_unknown_name_costs_the_same_scrypt_as_a_wrong_key(home, monkeypatch):
    key = users.add(home, "alice", read="a")
    check = users.Users(home)
    calls = count_hashes(monkeypatch)
    for wrong, user in (("alice.wrong", None), ("nobody.wrong", None), ("nodot", None), ("alice.", None),
                        (key, "bob")):
        calls.clear()
        assert check.check(wrong, user) is None
        assert len(calls) == 1, wrong
    calls.clear()
    assert check.check(key).can_read("a") and check.check(key).can_read("a")
    assert len(calls) == 1  # remembered after the first check


def test_the_event_loop_runs_while_a_key_is_hashed(home, monkeypatch):
    """The hash waits for the event loop to run something else: on the loop itself it would wait in vain."""
    users.add(home, "alice", read="a")
    gate = access.Gate(ok_app, policy=access.Policy(home, "", "127.0.0.1"))
    loop_ran = threading.Event()
    waited = []
    monkeypatch.setattr(users, "_hash", lambda secret, salt: waited.append(loop_ran.wait(10)) or b"x" * 32)

    async def main():
        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "path": "/", "method": "GET", "client": ("10.0.0.1", 1),
                 "headers": [(b"authorization", b"Bearer alice.wrong")]}
        request = asyncio.create_task(gate(scope, None, send))
        await asyncio.sleep(0.01)
        loop_ran.set()
        await request
        return sent[0]["status"]

    assert asyncio.run(main()) == 401
    assert waited == [True]


def test_wrong_keys_are_logged_and_limited_per_address(home, monkeypatch, caplog):
    key = users.add(home, "alice", read="a")
    now = [1000.0]
    logins = access.Logins(limit=3, window=60, clock=lambda: now[0])
    client = TestClient(access.Gate(ok_app, policy=access.Policy(home, "", "127.0.0.1"), logins=logins))
    assert client.get("/", headers=bearer(key)).status_code == 200  # checked (and remembered) before the flood
    calls = count_hashes(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="rag.serve.access"):
        for _ in range(3):
            assert client.get("/", headers=bearer("alice.wrong-secret")).status_code == 401
        refused = client.get("/", headers=bearer("nobody.wrong-secret"))
        assert client.get("/v1/models", headers=bearer("alice.wrong-secret")).status_code == 429
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["retry-after"] == "60"
    assert len(calls) == 3  # the refused ones were not hashed
    failures = [r for r in caplog.records if "wrong key from testclient" in r.getMessage()]
    assert len(failures) == 3 and "wrong-secret" not in caplog.text
    assert client.get("/", headers=bearer(key)).status_code == 200  # a key checked before still works
    assert client.get("/").status_code == 401  # no key at all: nothing to limit
    now[0] += 61
    assert client.get("/", headers=bearer("alice.wrong-secret")).status_code == 401  # the window has passed
    assert len(calls) == 4


def test_the_limit_is_per_address():
    logins = access.Logins(limit=2, window=60)

    async def main():
        for _ in range(2):
            assert await logins.check("10.0.0.1", lambda: None) is None
        with pytest.raises(access.TooManyFailures):
            await logins.check("10.0.0.1", lambda: "never called")
        return await logins.check("10.0.0.2", lambda: "alice")

    assert asyncio.run(main()) == "alice"
