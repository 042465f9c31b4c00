"""Who may do what: users with roles, sessions, personal API tokens, the login limit and the
audit log, all in the app database.

Roles: ``admin`` (everything), ``manager`` (all customers, overrides, runs) and ``rep`` (only
the customers they own: a rep's ``rep_name`` is the owner name their accounts carry,
their user name unless set). Passwords are hashed with Argon2id (argon2-cffi); session and
API tokens are random 256-bit strings stored only as SHA-256 digests, so a copy of the
database gives no way in.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tierwise.appdb import schema
from tierwise.errors import TierwiseError

Role = Literal["admin", "manager", "rep"]
ROLES: tuple[Role, ...] = ("admin", "manager", "rep")
SESSION_HOURS = 12
LOGIN_WINDOW = dt.timedelta(minutes=15)
LOGIN_FAILURES_ALLOWED = 5          # per (user name, client address), in the window
LOGIN_FAILURES_PER_CLIENT = 20      # per client address over all names, in the window
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()


@functools.cache
def _unknown_user_hash() -> str:
    """Checked against when the name is unknown, so that costs what a wrong password
    costs; made once per process (hashing is deliberately slow)."""
    return _hasher.hash("no such user: " + secrets.token_hex(16))


class LoginError(TierwiseError):
    """Wrong name or password, or too many failed attempts."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    rep_name: str | None
    active: bool = True

    @property
    def sees_all(self) -> bool:
        """Admins and managers see every customer; a rep only the accounts they own."""
        return self.role in ("admin", "manager")

    @property
    def owner_scope(self) -> str | None:
        """The owner name a rep's customers carry; None when the user sees everyone."""
        return None if self.sees_all else (self.rep_name or self.name)

    def may(self, action: str) -> bool:
        """override, run, policy, import, users: what the role allows beyond reading."""
        allowed = {"admin": {"override", "run", "policy", "import", "users", "log", "tasks"},
                   "manager": {"override", "run", "import", "log", "tasks"},
                   "rep": {"log", "tasks"}}
        return action in allowed[self.role]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role,
                "rep_name": self.owner_scope, "active": self.active}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: Any) -> User:
    return User(id=row.id, name=row.name, role=row.role, rep_name=row.rep_name,
                active=row.active)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise TierwiseError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def add_user(appdb: sa.Engine, name: str, role: str, password: str, *,
             rep_name: str | None = None) -> User:
    if role not in ROLES:
        raise TierwiseError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    name = name.strip()
    if not name:
        raise TierwiseError("a user needs a name")
    _check_password(password)
    t = schema.users
    with appdb.begin() as connection:
        if connection.execute(sa.select(t.c.id).where(t.c.name == name)).first():
            raise TierwiseError(f"user {name!r} exists already")
        connection.execute(t.insert().values(
            name=name, role=role, rep_name=rep_name, password_hash=_hasher.hash(password),
            active=True, created_at=_now()))
    return get_user(appdb, name)


def get_user(appdb: sa.Engine, name: str) -> User:
    t = schema.users
    with appdb.connect() as connection:
        row = connection.execute(sa.select(t).where(t.c.name == name)).first()
    if row is None:
        raise TierwiseError(f"no user {name!r}")
    return _user(row)


def list_users(appdb: sa.Engine) -> list[User]:
    with appdb.connect() as connection:
        return [_user(r) for r in connection.execute(
            sa.select(schema.users).order_by(schema.users.c.name))]


def has_users(appdb: sa.Engine) -> bool:
    with appdb.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(
            schema.users)).scalar_one() > 0


def set_password(appdb: sa.Engine, name: str, password: str) -> None:
    """A new password; the user's open sessions end (whoever knew the old one is out)."""
    _check_password(password)
    t = schema.users
    with appdb.begin() as connection:
        user_id = _user_id(connection, name)
        connection.execute(t.update().where(t.c.id == user_id).values(
            password_hash=_hasher.hash(password)))
        connection.execute(schema.sessions.delete().where(schema.sessions.c.user_id == user_id))


def _user_id(connection: sa.Connection, name: str) -> int:
    """The id of the user called ``name``, inside the caller's transaction."""
    t = schema.users
    found = connection.execute(sa.select(t.c.id).where(t.c.name == name)).scalar()
    if found is None:
        raise TierwiseError(f"no user {name!r}")
    return int(found)


def authenticate(appdb: sa.Engine, name: str, password: str, *, client: str) -> User:
    """The user whose password this is; LoginError otherwise.

    Failures are counted per (name, client address) — so someone guessing from one address
    cannot lock the admin out everywhere — and per address over all names (at most
    LOGIN_FAILURES_PER_CLIENT in the window, against password spraying). A blocked attempt
    is refused without checking the password and without extending the block. An unknown
    name costs the same password check as a wrong password, so the answer's timing does
    not tell which names exist."""
    attempts = schema.login_attempts
    since = _now() - LOGIN_WINDOW
    with appdb.begin() as connection:
        failed = sa.and_(attempts.c.at >= since, attempts.c.ok.is_(False))
        pair = connection.execute(sa.select(sa.func.count()).select_from(attempts).where(
            failed, attempts.c.name == name, attempts.c.client == client)).scalar_one()
        spread = connection.execute(sa.select(sa.func.count()).select_from(attempts).where(
            failed, attempts.c.client == client)).scalar_one()
    if pair >= LOGIN_FAILURES_ALLOWED or spread >= LOGIN_FAILURES_PER_CLIENT:
        raise LoginError("too many failed logins: wait 15 minutes")
    with appdb.begin() as connection:
        row = connection.execute(sa.select(schema.users).where(
            schema.users.c.name == name, schema.users.c.active.is_(True))).first()
        ok = _verify(row.password_hash if row is not None else _unknown_user_hash(), password)
        ok = ok and row is not None
        connection.execute(attempts.insert().values(name=name[:128], client=client[:64],
                                                    at=_now(), ok=ok))
        if row is not None and ok and _hasher.check_needs_rehash(row.password_hash):
            connection.execute(schema.users.update().where(schema.users.c.id == row.id)
                               .values(password_hash=_hasher.hash(password)))
    if not ok or row is None:
        raise LoginError("wrong user name or password")
    return _user(row)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


# -- sessions (cookies) and API tokens ------------------------------------------------------

@dataclass(frozen=True)
class Session:
    token: str           # the cookie value; only its digest is stored
    csrf: str            # the form token that must come back with every POST
    user: User


def start_session(appdb: sa.Engine, user: User) -> Session:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with appdb.begin() as connection:
        # Expired sessions and day-old login attempts are of no more use: sweep them here.
        connection.execute(schema.sessions.delete().where(
            schema.sessions.c.expires_at < _now()))
        connection.execute(schema.login_attempts.delete().where(
            schema.login_attempts.c.at < _now() - dt.timedelta(days=1)))
        connection.execute(schema.sessions.insert().values(
            token_hash=_digest(token), user_id=user.id, csrf=csrf, created_at=_now(),
            expires_at=_now() + dt.timedelta(hours=SESSION_HOURS)))
    return Session(token, csrf, user)


def session_of(appdb: sa.Engine, token: str | None) -> Session | None:
    if not token:
        return None
    s, u = schema.sessions, schema.users
    with appdb.connect() as connection:
        row = connection.execute(
            sa.select(s.c.csrf, s.c.expires_at, u).join(u, u.c.id == s.c.user_id)
            .where(s.c.token_hash == _digest(token))).first()
    if row is None or not row.active or _aware(row.expires_at) < _now():
        return None
    return Session(token, row.csrf, _user(row))


def end_session(appdb: sa.Engine, token: str) -> None:
    with appdb.begin() as connection:
        connection.execute(schema.sessions.delete().where(
            schema.sessions.c.token_hash == _digest(token)))


MAX_TOKEN_DAYS = 3650


def create_token(appdb: sa.Engine, user: User, label: str, *,
                 expires_days: int | None = None) -> str:
    """A personal API token (shown once): ``Authorization: Bearer tw_…``; it stops working
    after ``expires_days`` days when given, and at once when revoked."""
    if expires_days is not None and not 1 <= expires_days <= MAX_TOKEN_DAYS:
        raise TierwiseError(f"a token expires after 1 to {MAX_TOKEN_DAYS} days, "
                            f"not {expires_days}")
    token = "tw_" + secrets.token_urlsafe(32)
    expires = None if expires_days is None else _now() + dt.timedelta(days=expires_days)
    with appdb.begin() as connection:
        connection.execute(schema.api_tokens.insert().values(
            token_hash=_digest(token), user_id=user.id, label=label, created_at=_now(),
            expires_at=expires))
    return token


@dataclass(frozen=True)
class TokenInfo:
    """An API token as its owner and admins see it (never the token itself)."""

    id: int
    user: str
    label: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None
                                            or _aware(self.expires_at) > _now())

    def to_json(self) -> dict[str, Any]:
        def when(value: dt.datetime | None) -> str | None:
            return None if value is None else _aware(value).isoformat()

        return {"id": self.id, "user": self.user, "label": self.label,
                "created_at": when(self.created_at), "last_used_at": when(self.last_used_at),
                "expires_at": when(self.expires_at), "revoked_at": when(self.revoked_at),
                "usable": self.usable}


def list_tokens(appdb: sa.Engine, user: str | None = None) -> list[TokenInfo]:
    """API tokens, newest first: one user's, or everyone's."""
    k, u = schema.api_tokens, schema.users
    query = (sa.select(k.c.id, u.c.name, k.c.label, k.c.created_at, k.c.last_used_at,
                       k.c.expires_at, k.c.revoked_at)
             .join(u, u.c.id == k.c.user_id).order_by(k.c.id.desc()))
    if user is not None:
        query = query.where(u.c.name == user)
    with appdb.connect() as connection:
        return [TokenInfo(*row) for row in connection.execute(query)]


def revoke_token(appdb: sa.Engine, token_id: int, *, owner: str | None = None) -> TokenInfo:
    """Revoke a token at once; with ``owner``, only one of theirs (another's is the same
    "no token" as a missing one)."""
    found = [t for t in list_tokens(appdb, owner) if t.id == token_id]
    if not found:
        raise TierwiseError(f"no API token {token_id}")
    if found[0].revoked_at is None:
        k = schema.api_tokens
        with appdb.begin() as connection:
            connection.execute(k.update().where(k.c.id == token_id).values(revoked_at=_now()))
    return next(t for t in list_tokens(appdb, owner) if t.id == token_id)


def set_active(appdb: sa.Engine, name: str, active: bool) -> User:
    """Deactivate a user (their sessions end and their tokens stop at once; nothing of
    theirs is deleted) or activate them again."""
    t = schema.users
    with appdb.begin() as connection:
        user_id = _user_id(connection, name)
        connection.execute(t.update().where(t.c.id == user_id).values(active=active))
        if not active:
            connection.execute(schema.sessions.delete().where(
                schema.sessions.c.user_id == user_id))
    return get_user(appdb, name)


def token_user(appdb: sa.Engine, token: str) -> User | None:
    k, u = schema.api_tokens, schema.users
    with appdb.begin() as connection:
        row = connection.execute(sa.select(k.c.id.label("token_id"), k.c.expires_at, u).join(
            u, u.c.id == k.c.user_id).where(k.c.token_hash == _digest(token),
                                            k.c.revoked_at.is_(None))).first()
        if row is None or not row.active or (row.expires_at is not None
                                             and _aware(row.expires_at) <= _now()):
            return None
        connection.execute(k.update().where(k.c.id == row.token_id).values(
            last_used_at=_now()))
    return _user(row)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)



