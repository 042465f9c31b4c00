"""Signing in is limited per (name, address) and per address, so guessing from one place
cannot lock the admin out everywhere and spraying many names from one place stops; a
blocked try is refused without a password check and does not extend the block; an unknown
name costs the same password check as a wrong password."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tierwise.appdb import schema
from tierwise.work import users
from tierwise.workspace import Workspace

PASSWORD = "correct horse battery"


@pytest.fixture
def appdb(ws: Workspace) -> sa.Engine:
    users.add_user(ws.appdb, "boss", "admin", PASSWORD)
    return ws.appdb


def attempts(appdb: sa.Engine) -> int:
    with appdb.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(
            schema.login_attempts)).scalar_one()


def test_guessing_from_one_address_does_not_lock_the_name_elsewhere(appdb: sa.Engine) -> None:
    for _ in range(users.LOGIN_FAILURES_ALLOWED):
        with pytest.raises(users.LoginError, match="wrong"):
            users.authenticate(appdb, "boss", "guess", client="203.0.113.9")
    with pytest.raises(users.LoginError, match="too many"):
        users.authenticate(appdb, "boss", PASSWORD, client="203.0.113.9")
    assert users.authenticate(appdb, "boss", PASSWORD, client="10.1.2.3").name == "boss"


def test_spraying_names_from_one_address_is_stopped(appdb: sa.Engine) -> None:
    for i in range(users.LOGIN_FAILURES_PER_CLIENT):
        with pytest.raises(users.LoginError, match="wrong"):
            users.authenticate(appdb, f"name{i}", "guess", client="203.0.113.7")
    with pytest.raises(users.LoginError, match="too many"):
        users.authenticate(appdb, "boss", PASSWORD, client="203.0.113.7")


def test_a_blocked_try_is_not_counted_and_checks_no_password(
        appdb: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(users.LOGIN_FAILURES_ALLOWED):
        with pytest.raises(users.LoginError):
            users.authenticate(appdb, "boss", "guess", client="203.0.113.9")
    counted = attempts(appdb)
    checks: list[str] = []
    monkeypatch.setattr(users, "_verify", lambda stored, password: checks.append(stored))
    for _ in range(3):
        with pytest.raises(users.LoginError, match="too many"):
            users.authenticate(appdb, "boss", "guess", client="203.0.113.9")
    assert attempts(appdb) == counted and checks == []


def test_an_unknown_name_costs_a_password_check(appdb: sa.Engine,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    real = users._verify

    def counting(stored: str, password: str) -> bool:
        checked.append(stored)
        return real(stored, password)

    monkeypatch.setattr(users, "_verify", counting)
    for name in ("boss", "nobody"):
        with pytest.raises(users.LoginError, match="wrong user name or password"):
            users.authenticate(appdb, name, "guess", client="10.0.0.1")
    assert len(checked) == 2 and all(h.startswith("$argon2id$") for h in checked)
