"""The multi-user service against the local PostgreSQL and Redis: migrations up and down, the commands that make
accounts, `memebot api serve` as a process, tokens (expired, tampered, revoked, replayed), lockout, roles and API key
scopes, isolation between users on every resource, and what never leaves the service (hashes, secrets, passwords)."""

import json, os, shutil, subprocess, sys, time, uuid
from pathlib import Path
import pytest
import redis
import asyncio
import redis.asyncio
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given, settings as hsettings, strategies as hs, HealthCheck
from sqlalchemy.orm import Session
from memebot.api import create_app
from memebot.api.auth import TokenService, hash_password, new_secret
from memebot.config import load_settings
from memebot.db import Bot, User, db_url, head_revision, migrate, scratch_database
from _strategies import ROUND_TRIP

PASSWORDS = {"root": "root password 1", "alice": "alice password 1", "bob": "bob password 11", "vic": "vic password 1"}
ROLES = {"root": "admin", "alice": "trader", "bob": "trader", "vic": "viewer"}


@pytest.fixture(scope="module")
def pg():
    "A migrated scratch database on the local server, with four users."
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()
        cm = scratch_database()
        url = cm.__enter__()
    except Exception as e:  # the machines run both; a missing one is a setup error, said plainly
        pytest.fail(f"the service tests need PostgreSQL and Redis on 127.0.0.1 (.ci/run starts them): {e}")
    migrate(url)
    eng = sa.create_engine(db_url(url), poolclass=sa.pool.NullPool)
    with Session(eng) as s:
        s.add_all([User(username=n, password_hash=hash_password(PASSWORDS[n]), role=r) for n, r in ROLES.items()])
        s.commit()
    eng.dispose()
    yield url
    cm.__exit__(None, None, None)


def service_settings(url, store=None, **over):
    "Service settings on `url` with a fresh Redis prefix (removed by `clean_prefix`), and a market store path."
    ov = {"api_enabled": True, "database_url": url, "api_secret_key": new_secret(),
          "redis_prefix": f"t{uuid.uuid4().hex[:10]}", "login_max_failures": 3} | over  # fmt: skip
    ov = {f"enterprise.{k}": v for k, v in ov.items()} | ({"store.path": str(store)} if store else {})
    return load_settings(env={}, overrides=ov)


def clean_prefix(s):
    r = redis.Redis.from_url(s.enterprise.redis_url)
    for k in r.scan_iter(f"{s.enterprise.redis_prefix}:*"):
        r.delete(k)


class Api:
    "A TestClient on the app, remembering every response body (to search them for secrets)."

    def __init__(self, client, settings):
        self.c, self.s, self.bodies = client, settings, []

    def __call__(self, method, path, who=None, key=None, **kw):
        h = kw.pop("headers", {})
        if who:
            h["Authorization"] = f"Bearer {self.token(who)}"
        if key:
            h["X-API-Key"] = key
        r = self.c.request(method, f"/api/v1{path}", headers=h, **kw)
        self.bodies.append(r.text)
        return r

    def login(self, name, password=None):
        return self("POST", "/auth/token", data={"username": name, "password": password or PASSWORDS[name]})

    def token(self, name):
        if name not in getattr(self, "_tokens", {}):
            self._tokens = getattr(self, "_tokens", {})
            r = self.login(name)
            assert r.status_code == 200, r.text
            self._tokens[name] = r.json()["access_token"]
        return self._tokens[name]


@pytest.fixture
def api(pg, tmp_path):
    s = service_settings(pg, api_rate_per_min=100_000, wallets_dir=str(tmp_path / "wallets"))
    with TestClient(create_app(s)) as c:
        yield Api(c, s)
    clean_prefix(s)


def test_tokens_expired_tampered_revoked_and_replayed(api):
    r = api.login("alice").json()
    ok = {"Authorization": f"Bearer {r['access_token']}"}
    assert api("GET", "/me", headers=dict(ok)).json()["username"] == "alice"
    ts = TokenService(api.s, redis.asyncio.Redis())  # the same secret: a token the service itself would sign
    expired, _ = ts.access(2, now=time.time() - 3600)
    other = TokenService(service_settings("postgresql://x@127.0.0.1/x"), None).access(2)[0]  # another secret
    for bad, why in ((expired, "expired"), (r["access_token"][:-3] + "abc", "invalid"), (other, "invalid"),
                     ("not.a.jwt", "invalid")):  # fmt: skip
        res = api("GET", "/me", headers={"Authorization": f"Bearer {bad}"})
        assert res.status_code == 401 and why in res.json()["detail"] and res.headers["www-authenticate"] == "Bearer"
    # refresh rotates; the old refresh token replayed revokes the whole login
    new = api("POST", "/auth/refresh", json={"refresh_token": r["refresh_token"]}).json()
    assert api("GET", "/me", headers={"Authorization": f"Bearer {new['access_token']}"}).status_code == 200
    replay = api("POST", "/auth/refresh", json={"refresh_token": r["refresh_token"]})
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    assert api("POST", "/auth/refresh", json={"refresh_token": new["refresh_token"]}).status_code == 401
    # logout revokes the access token used and the refresh token's login
    two = api.login("alice").json()
    h2 = {"Authorization": f"Bearer {two['access_token']}"}
    assert (
        api("POST", "/auth/logout", headers=dict(h2), json={"refresh_token": two["refresh_token"]}).status_code == 204
    )
    assert api("GET", "/me", headers=dict(h2)).json()["detail"] == "access token revoked"
    assert api("POST", "/auth/refresh", json={"refresh_token": two["refresh_token"]}).status_code == 401


def test_role_changes_and_disabling_apply_at_once(api, pg):
    tok = api.login("bob").json()["access_token"]
    h = lambda: {"Authorization": f"Bearer {tok}"}
    root = api.token("root")
    bob_id = api("GET", "/me", headers=h()).json()["id"]
    assert api("POST", "/bots", headers=h(), json={"name": "b-1", "strategy": "ema_cross"}).status_code == 201
    hr = {"Authorization": f"Bearer {root}"}
    assert api("PATCH", f"/users/{bob_id}", headers=dict(hr), json={"role": "viewer"}).json()["role"] == "viewer"
    assert api("POST", "/bots", headers=h(), json={"name": "b-2", "strategy": "ema_cross"}).status_code == 403
    api("PATCH", f"/users/{bob_id}", headers=dict(hr), json={"disabled": True})
    assert api("GET", "/me", headers=h()).json()["detail"] == "account disabled"
    assert api.login("bob").status_code == 401
    api("PATCH", f"/users/{bob_id}", headers=dict(hr), json={"disabled": False, "role": "trader"})
    own = api("PATCH", f"/users/{api('GET', '/me', 'root').json()['id']}", headers=dict(hr), json={"role": "viewer"})
    assert own.status_code == 400 and own.json()["field"] == "role"  # an admin cannot demote themself
    log = api("GET", "/audit", "root", params={"limit": 1000}).json()
    assert [e["action"] for e in log if e["target"] == f"user:{bob_id}"][:3] == ["user.update"] * 3
    assert any(e["action"] == "bot.create" and e["actor"] == "bob" for e in log)


def test_lockout_after_failed_logins(api):
    for _ in range(3):
        assert api.login("vic", "wrong password").status_code == 401
    locked = api.login("vic")  # the right password, now refused
    assert locked.status_code == 429 and "locked" in locked.json()["detail"] and int(locked.headers["retry-after"]) > 0
    assert api.login("alice").status_code == 200  # other accounts are not affected
    assert api.login("nobody", "whatever pw").json()["detail"] == "wrong username or password"
    acts = [e["action"] for e in api("GET", "/audit", "root", params={"limit": 20}).json()]
    assert "login.locked" in acts and acts.count("login.failed") >= 3


def test_login_rate_limit_per_address(pg):
    s = service_settings(pg, login_rate_per_min=4)
    try:
        with TestClient(create_app(s)) as c:
            codes = [  # a different name each time: one name's lockout is not what stops them
                c.post("/api/v1/auth/token", data={"username": f"user{i}", "password": "bad pw 123"}).status_code
                for i in range(5)
            ]
        assert codes[:4] == [401] * 4 and codes[4] == 429
    finally:
        clean_prefix(s)


def test_api_rate_limit_per_user(pg):
    s = service_settings(pg, api_rate_per_min=3)
    try:
        with TestClient(create_app(s)) as c:
            t = c.post("/api/v1/auth/token", data={"username": "vic", "password": PASSWORDS["vic"]}).json()
            h = {"Authorization": f"Bearer {t['access_token']}"}
            codes = [c.get("/api/v1/me", headers=h) for _ in range(4)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429] and int(codes[3].headers["retry-after"]) > 0
    finally:
        clean_prefix(s)


def test_roles_and_api_key_scopes(api):
    assert api("POST", "/bots", "vic", json={"name": "v", "strategy": "ema_cross"}).status_code == 403
    assert api("GET", "/bots", "vic").status_code == 200
    for path in ("/users", "/audit"):
        assert api("GET", path, "alice").status_code == 403 and api("GET", path, "root").status_code == 200
    bad = api("POST", "/keys", "vic", json={"name": "k", "scopes": ["read", "trade"]})
    assert bad.status_code == 400 and bad.json()["field"] == "scopes"  # more than a viewer may grant
    read = api("POST", "/keys", "alice", json={"name": "reader", "scopes": ["read"]}).json()
    trade = api("POST", "/keys", "alice", json={"name": "trader", "scopes": ["read", "trade"]}).json()
    assert read["key"].startswith(f"mbk_{read['prefix']}_") and "key_hash" not in read
    assert api("GET", "/bots", key=read["key"]).status_code == 200
    denied = api("POST", "/bots", key=read["key"], json={"name": "k-bot", "strategy": "ema_cross"})
    assert denied.status_code == 403 and read["prefix"] in denied.json()["detail"]
    assert api("POST", "/bots", key=trade["key"], json={"name": "k-bot", "strategy": "ema_cross"}).status_code == 201
    assert api("POST", "/keys", key=trade["key"], json={"name": "x"}).status_code == 403  # keys cannot make keys
    listed = api("GET", "/keys", "alice").json()
    assert {k["prefix"] for k in listed} >= {read["prefix"], trade["prefix"]} and all("key" not in k for k in listed)
    assert api("DELETE", f"/keys/{read['id']}", "alice").status_code == 204
    assert api("GET", "/bots", key=read["key"]).json()["detail"] == "API key invalid or revoked"
    assert api("GET", "/bots", key=trade["key"][:-1] + "x").status_code == 401  # right prefix, wrong secret
    assert api("GET", "/bots", key="mbk_zz_nope").status_code == 401
    assert api("GET", "/bots").status_code == 401


def test_bad_bodies_name_the_field(api):
    for body, field in (
        ({"name": "x", "strategy": "nope"}, "strategy"),
        ({"name": "x", "strategy": "ema_cross", "params": {"fast": "abc"}}, "params.fast"),
        ({"name": "x", "strategy": "ema_cross", "mode": "live"}, "mode"),  # live trading is off in the service
    ):
        r = api("POST", "/bots", "alice", json=body)
        assert r.status_code == 400 and r.json()["field"] == field, r.text
    r = api("POST", "/users", "root", json={"username": "new-user", "password": "pw-9Zq", "role": "god"})
    assert r.status_code == 422 and {tuple(e["loc"]) for e in r.json()["detail"]} == {("body", "password"),
                                                                                       ("body", "role")}  # fmt: skip
    assert "pw-9Zq" not in r.text and "god" not in r.text  # the values sent are not echoed
    dup = api("POST", "/bots", "alice", json={"name": "dup", "strategy": "ema_cross"})
    assert dup.status_code == 201
    assert api("POST", "/bots", "alice", json={"name": "dup", "strategy": "ema_cross"}).json()["field"] == "name"


def test_users_cannot_reach_each_others_resources(api):
    bot = api("POST", "/bots", "alice", json={"name": "alice-secret-bot", "strategy": "ema_cross"}).json()
    wallet = api("POST", "/wallets", "root", json={"name": "ops", "chain": "bsc", "secret": "0x" + "ab" * 32}).json()
    key = api("POST", "/keys", "alice", json={"name": "alice-key", "scopes": ["read"]}).json()
    bob_key = api("POST", "/keys", "bob", json={"name": "bob-key", "scopes": ["read", "trade"]}).json()["key"]
    for auth in ({"who": "bob"}, {"key": bob_key}, {"who": "vic"}):
        tries = [
            api("GET", f"/bots/{bot['id']}", **auth),
            api("DELETE", f"/bots/{bot['id']}", **auth),
            api("DELETE", f"/keys/{key['id']}", **auth),
            api("GET", f"/wallets/{wallet['id']}", **auth),
            api("DELETE", f"/wallets/{wallet['id']}", **auth),
        ]
        assert all(t.status_code in (403, 404) for t in tries), [t.text for t in tries]
        for path, params in (("/bots", {}), ("/bots", {"state": "created"}), ("/keys", {}), ("/wallets", {})):
            r = api("GET", path, params=params, **auth)
            assert r.status_code == 200 and all(x["owner_id"] not in (bot["owner_id"], wallet["owner_id"])
                                                for x in r.json())  # fmt: skip
        assert all(wallet["address"] not in t.text for t in tries)
        assert all("alice-secret-bot" not in t.text and key["prefix"] not in t.text for t in tries)
    assert api("GET", f"/bots/{bot['id']}", "alice").json()["name"] == "alice-secret-bot"  # still there
    assert api("GET", "/keys", "alice").json()[0]["revoked_at"] is None
    assert api("GET", f"/wallets/{wallet['id']}", "root").json()["address"] == wallet["address"]
    assert {b["name"] for b in api("GET", "/bots", "root").json()} >= {"alice-secret-bot"}  # an admin sees all


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=hs.lists(hs.tuples(hs.sampled_from(["alice", "bob", "vic", "root"]), hs.sampled_from(["make", "get", "del"]),
                              hs.integers(0, 30)), min_size=1, max_size=12))  # fmt: skip
def test_isolation_holds_for_any_sequence(api, ops):
    "Whatever users do in whatever order, a non-admin only ever reads their own bots."
    me = {n: api("GET", "/me", n).json()["id"] for n in ("alice", "bob", "vic", "root")}
    for who, op, n in ops:
        if op == "make":
            api("POST", "/bots", who, json={"name": f"h{uuid.uuid4().hex[:8]}", "strategy": "ema_cross"})
        else:
            ids = [b["id"] for b in api("GET", "/bots", "root").json()]
            if ids:
                r = api("GET" if op == "get" else "DELETE", f"/bots/{ids[n % len(ids)]}", who)
                if r.status_code in (200,) and who != "root":
                    assert r.json()["owner_id"] == me[who]
        for u in ("alice", "bob", "vic"):
            assert all(b["owner_id"] == me[u] for b in api("GET", "/bots", u).json())


def test_nothing_secret_leaves_the_service(api, caplog):
    from solders.keypair import Keypair

    caplog.set_level("DEBUG")
    k = api("POST", "/keys", "alice", json={"name": "once", "scopes": ["read"]}).json()
    wallet_key = str(Keypair())
    assert (
        api("POST", "/wallets", "root", json={"name": "hot", "chain": "solana", "secret": wallet_key}).status_code
        == 201
    )
    api("POST", "/wallets", "root", json={"name": "hot", "chain": "solana", "secret": wallet_key[:-3] + "xyz"})  # 400
    api("GET", "/wallets", "root")
    api("GET", "/bots", key=k["key"])
    api("GET", "/users", "root")
    api("GET", "/audit", "root")
    api("POST", "/users", "root", json={"username": "leaky", "password": "leaky password 1", "role": "viewer"})
    api.login("alice", "alice wrong password")
    everything = "\n".join(api.bodies)
    assert everything.count(k["key"]) == 1  # only in the answer that created it
    secret = api.s.enterprise.api_secret_key.get_secret_value()
    for needle in ("$argon2", "key_hash", "password_hash", secret, "leaky password 1", "alice wrong password",
                   wallet_key, wallet_key[:-3], "key_file"):  # fmt: skip
        assert needle not in everything and needle not in caplog.text, needle
    for pw in PASSWORDS.values():
        assert pw not in everything and pw not in caplog.text


def test_headers_body_limit_and_cors(pg):
    s = service_settings(pg, max_request_bytes=2048)
    try:
        with TestClient(create_app(s)) as c:
            r = c.get("/api/v1/health")
            assert r.json() == {"status": "ok", "database": True, "redis": True}
            assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["cache-control"] == "no-store"
            big = c.post("/api/v1/auth/token", data={"username": "a", "password": "x" * 5000})
            assert big.status_code == 413 and "2048" in big.json()["detail"]
            pre = c.options(
                "/api/v1/bots", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
            )
            assert "access-control-allow-origin" not in pre.headers  # CORS closed by default
            assert c.get("/api/v1/openapi.json").json()["components"]["securitySchemes"].keys() == {
                "OAuth2PasswordBearer",
                "APIKeyHeader",
            }
    finally:
        clean_prefix(s)
    s2 = service_settings(pg, cors_origins="https://desk.example")
    try:
        with TestClient(create_app(s2)) as c:
            hdr = lambda o: c.options("/api/v1/bots", headers={"Origin": o, "Access-Control-Request-Method": "GET"})
            assert hdr("https://desk.example").headers["access-control-allow-origin"] == "https://desk.example"
            assert "access-control-allow-origin" not in hdr("https://evil.example").headers
    finally:
        clean_prefix(s2)


def _cli(args, env, stdin=None):
    exe = Path(sys.executable).parent / "memebot"
    return subprocess.run([str(exe), *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)


def test_commands_migrate_make_users_and_serve(cli_env, unused_tcp_port):
    name = f"memebot_cli_{uuid.uuid4().hex[:10]}"
    s = service_settings("postgresql://postgres@127.0.0.1:5432/postgres")
    env = dict(cli_env, MEMEBOT_ENTERPRISE_DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{name}",
               MEMEBOT_ENTERPRISE_REDIS_PREFIX=s.enterprise.redis_prefix)  # fmt: skip
    try:
        off = _cli(["users", "ls"], env)
        assert off.returncode == 2 and "does not exist" in off.stderr and "db upgrade" in off.stderr
        head = _cli(["db", "current", "--json"], env)  # the database does not exist yet
        assert head.returncode == 2
        assert f"created the database; schema at revision {head_revision()}" in _cli(["db", "upgrade"], env).stdout
        assert json.loads(_cli(["db", "current", "--json"], env).stdout)["up_to_date"] is True
        add = _cli(["users", "add", "boss", "--role", "admin", "--password-stdin"], env, "boss password 1\n")
        assert add.returncode == 0, add.stderr
        assert _cli(["users", "add", "boss", "--password-stdin"], env, "boss password 1\n").returncode == 2
        assert _cli(["users", "role", "boss", "emperor"], env).returncode == 2
        assert json.loads(_cli(["users", "ls", "--json"], env).stdout)[0]["role"] == "admin"
        assert _cli(["api", "serve"], env).stderr.startswith("error: enterprise: api_enabled")
        env |= {"MEMEBOT_ENTERPRISE_API_ENABLED": "true", "MEMEBOT_ENTERPRISE_API_SECRET_KEY": "tooshort"}
        assert "api_secret_key" in _cli(["api", "serve"], env).stderr
        env["MEMEBOT_ENTERPRISE_API_SECRET_KEY"] = new_secret()
        _serve_and_call(env, unused_tcp_port)
        assert _cli(["db", "downgrade", "--revision", "base"], env).returncode == 2  # needs --yes
        assert _cli(["db", "downgrade", "--revision", "base", "--yes"], env).returncode == 0
        assert "db upgrade" in _cli(["api", "serve"], env).stderr  # the schema is behind: refused
        assert f"revision {head_revision()}" in _cli(["db", "upgrade"], env).stdout  # and up again
        assert json.loads(_cli(["users", "ls", "--json"], env).stdout) == []
    finally:
        eng = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()
        clean_prefix(s)


def _serve_and_call(env, port):
    import httpx

    exe = Path(sys.executable).parent / "memebot"
    p = subprocess.Popen([str(exe), "api", "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        first = p.stdout.readline()  # printed once the app is built and the socket listens
        assert f"127.0.0.1:{port}/api/v1" in first, first
        base = f"http://127.0.0.1:{port}/api/v1"
        h = httpx.get(f"{base}/health", timeout=30)  # the socket listens before the line is printed
        assert h.json()["status"] == "ok" and "server" not in h.headers
        tok = httpx.post(f"{base}/auth/token", data={"username": "boss", "password": "boss password 1"}).json()
        me = httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {tok['access_token']}"}).json()
        assert me["username"] == "boss" and me["role"] == "admin"
    finally:
        p.terminate()
        p.wait(timeout=30)


def test_the_service_refuses_to_run_open(pg):
    from memebot.core import ValidationError

    with pytest.raises(ValidationError, match="always authenticates"):
        create_app(service_settings(pg, authentication_required=False))
    with pytest.raises(ValidationError, match="api_secret_key"):
        create_app(service_settings(pg, api_secret_key="secret" * 8))  # long, but guessable


# --- schemathesis: the OpenAPI document, exercised with tokens of each role against a real server -----------------
import threading
import schemathesis
import uvicorn
from schemathesis.checks import not_a_server_error


@pytest.fixture(scope="module")
def served(pg, tmp_path_factory):
    "The app on uvicorn in a thread (socket bound first), and an access token per user."
    from memebot.commands.service import listening_socket

    tmp = tmp_path_factory.mktemp("served")
    s = service_settings(pg, api_rate_per_min=1_000_000, login_rate_per_min=10_000, login_max_failures=100,
                         job_workers=0, bots_dir=str(tmp / "bots"), wallets_dir=str(tmp / "wallets"))  # fmt: skip
    live = s.live.model_copy(update={"kill_file": str(tmp / "KILL")})
    store = s.store.model_copy(update={"path": str(tmp / "store.duckdb")})
    ai = s.ai.model_copy(update={"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}"})
    s = s.model_copy(update={"live": live, "store": store, "ai": ai})
    env = dict(
        os.environ, MEMEBOT_STORE_PATH=store.path, MEMEBOT_SETTINGS=str(Path(__file__).parent.parent / "settings.ini")
    )
    assert _cli(["sim", "--minutes", "10", "--launches", "1", "--tf", "1m"], env).returncode == 0  # market data to read
    sock = listening_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(s), log_level="warning"))
    th = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    import httpx

    toks = {}
    for name in PASSWORDS:
        r = httpx.post(f"{base}/api/v1/auth/token", data={"username": name, "password": PASSWORDS[name]}, timeout=30)
        toks[name] = r.json()["access_token"]
    yield base, toks
    server.should_exit = True
    th.join(timeout=30)
    clean_prefix(s)


def test_no_server_errors_for_any_role(served, pg):
    """schemathesis: generated requests to every operation of the OpenAPI document, each sent as an admin, a trader
    and a viewer: never a 5xx. (Logout is left out: it would revoke the tokens the rest runs with; an admin's
    generated changes to users are undone after each example, so the three keep their roles.)"""
    from hypothesis import given

    base, toks = served
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    assert len(ops) == 38  # every route is in the document
    eng = sa.create_engine(db_url(pg), poolclass=sa.pool.NullPool)
    codes = {}

    def restore():
        with eng.begin() as c:
            for name, role in ROLES.items():
                c.execute(sa.update(User).where(User.username == name).values(role=role, disabled=False))

    for op in (o for o in ops if o.path != "/api/v1/auth/logout"):

        @hsettings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def send(case):
            for who in ("root", "alice", "vic"):
                case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"}
                r = case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {toks[who]}"},
                                           checks=[not_a_server_error])  # fmt: skip
                codes.setdefault(op.path, set()).add(r.status_code)
            restore()

        send()
    eng.dispose()
    got_through = {p for p, cs in codes.items() if any(c < 300 for c in cs)}  # random credentials never log in
    assert got_through >= {p for p in codes if "{" not in p and "/auth/" not in p}, codes


# --- backtest jobs ------------------------------------------------------------------------------------------------
def _wait_job(r, channel_sub, job_id, timeout=180):
    "The job's final state, from its owner's event channel (no polling)."
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = channel_sub.get_message(timeout=max(end - time.monotonic(), 0.1))
        if m and m["type"] == "message":
            ev = json.loads(m["data"])
            if ev["id"] == job_id and ev["state"] in ("done", "failed"):
                return ev["state"]
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_backtest_jobs_run_like_the_command(pg, cli_env, memebot, tmp_path, monkeypatch):
    memebot("sim", "--minutes", "30", "--seed", "3", "--launches", "2", "--tf", "1m", check=True)
    monkeypatch.setenv("MEMEBOT_SETTINGS", cli_env["MEMEBOT_SETTINGS"])
    s = service_settings(pg, store=cli_env["MEMEBOT_STORE_PATH"], api_rate_per_min=100_000)  # the jobs read it too
    s = s.model_copy(update={"backtest": s.backtest.model_copy(update={"output_dir": str(tmp_path / "bt")})})
    r = redis.Redis.from_url(s.enterprise.redis_url)
    try:
        with TestClient(create_app(s)) as c:
            api = Api(c, s)
            ids = {n: api("GET", "/me", n).json()["id"] for n in ("alice", "bob")}
            sub = r.pubsub()
            sub.subscribe(f"{s.enterprise.redis_prefix}:events:{ids['alice']}")
            body = {"strategy": "ema_cross", "params": {"fast": 5, "slow": 20}, "tf": "1m"}
            job = api("POST", "/backtests", "alice", json=body)
            assert job.status_code == 202 and job.json()["state"] == "queued"
            jid = job.json()["id"]
            assert _wait_job(r, sub, jid) == "done"
            got = api("GET", f"/backtests/{jid}", "alice").json()
            direct = memebot("backtest", "--strategy", "ema_cross", "--param", "fast=5", "--param", "slow=20", "--tf",
                             "1m", "--json", "-", "--no-tearsheet", check=True)  # fmt: skip
            want = json.loads(direct.stdout)
            assert got["result"]["metrics"] == want["metrics"] and got["result"]["orders"] == want["orders"]
            assert got["result"]["trades"] == len(want["trades"]) and got["result"]["bars"] > 0
            page = api("GET", f"/backtests/{jid}/tearsheet", "alice")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert (
                api("GET", f"/backtests/{jid}/tearsheet", "alice", params={"format": "png"}).content[:4] == b"\x89PNG"
            )
            # isolation, roles, bad input, a job that fails
            assert api("GET", f"/backtests/{jid}", "bob").status_code == 404
            assert api("GET", f"/backtests/{jid}/tearsheet", "bob").status_code == 404
            assert all(j["owner_id"] == ids["bob"] for j in api("GET", "/backtests", "bob").json())
            assert api("POST", "/backtests", "vic", json=body).status_code == 403
            assert api("POST", "/backtests", "alice", json={"strategy": "nope"}).json()["field"] == "strategy"
            bad = api("POST", "/backtests", "alice", json=body | {"symbols": ["NOPE/USDT"]}).json()["id"]
            assert _wait_job(r, sub, bad) == "failed"
            err = api("GET", f"/backtests/{bad}", "alice").json()["error"]
            assert "NOPE/USDT" in err and "Traceback" not in err
            assert api("GET", f"/backtests/{bad}/tearsheet", "alice").status_code == 404
            acts = [e["action"] for e in api("GET", "/audit", "root").json()]
            assert acts.count("backtest.submit") == 2
    finally:
        clean_prefix(s)


def test_a_job_left_running_by_a_dead_worker_runs_again(pg, cli_env, memebot, tmp_path, monkeypatch):
    import asyncio
    from memebot.api import Service
    from memebot.api.jobs import JobRunner
    from memebot.db import Job

    memebot("sim", "--minutes", "30", "--seed", "4", "--launches", "2", "--tf", "1m", check=True)
    monkeypatch.setenv("MEMEBOT_SETTINGS", cli_env["MEMEBOT_SETTINGS"])
    s = service_settings(pg, store=cli_env["MEMEBOT_STORE_PATH"])
    s = s.model_copy(update={"backtest": s.backtest.model_copy(update={"output_dir": str(tmp_path / "bt")})})
    eng = sa.create_engine(db_url(pg), poolclass=sa.pool.NullPool)
    with Session(eng) as db:
        alice = db.execute(sa.select(User.id).where(User.username == "alice")).scalar_one()
        job = Job(owner_id=alice, kind="backtest", params={"strategy": "ema_cross", "tf": "1m"}, state="running")
        db.add(job)
        db.commit()
        jid = job.id  # a worker claimed it, then its process died: nothing in the queue

    async def restart():
        sv = Service(s)
        runner = JobRunner(sv, workers=0)  # recover and run by hand: no background task to wait on
        try:
            assert await runner.recover() >= 1
            assert int(await sv.redis.rpop(runner.queue)) == jid
            return await runner.run_one(jid), await runner.run_one(jid)  # the second finds it claimed
        finally:
            await sv.aclose()

    try:
        assert asyncio.run(restart()) == ("done", None)
        with Session(eng) as db:
            done = db.get(Job, jid)
            assert done.state == "done" and done.result["metrics"] and done.finished_at is not None
    finally:
        eng.dispose()
        clean_prefix(s)


def test_job_leases_let_worker_pools_share_one_queue(pg, cli_env, memebot, tmp_path, monkeypatch):
    """A job whose worker still holds its lease is left alone by another pool starting; one whose lease ran out runs
    again; a worker that loses its lease stops the job's process and records nothing."""
    import asyncio
    from memebot.api import Service
    from memebot.api.jobs import JobRunner
    from memebot.db import Job

    memebot("sim", "--minutes", "30", "--seed", "4", "--launches", "2", "--tf", "1m", check=True)
    monkeypatch.setenv("MEMEBOT_SETTINGS", cli_env["MEMEBOT_SETTINGS"])
    s = service_settings(pg, store=cli_env["MEMEBOT_STORE_PATH"], job_lease_s=1.5)
    s = s.model_copy(update={"backtest": s.backtest.model_copy(update={"output_dir": str(tmp_path / "bt")})})
    eng = sa.create_engine(db_url(pg), poolclass=sa.pool.NullPool)
    with Session(eng) as db:
        alice = db.execute(sa.select(User.id).where(User.username == "alice")).scalar_one()
        params = {"strategy": "ema_cross", "tf": "1m"}
        busy = Job(owner_id=alice, kind="backtest", params=params, state="running", lease_owner="elsewhere:1:x",
                   lease_until=sa.func.now() + sa.text("interval '1 hour'"))  # fmt: skip
        fresh = Job(owner_id=alice, kind="backtest", params=params)
        db.add_all([busy, fresh])
        db.commit()
        busy_id, fresh_id = busy.id, fresh.id

    def job(i):
        with Session(eng) as db:
            return db.get(Job, i)

    async def pools():
        sv = Service(s)
        a, b = JobRunner(sv, workers=0), JobRunner(sv, workers=0)
        try:
            await b.recover()  # a second pool starts beside the busy worker: its job stays its job
            assert job(busy_id).state == "running" and job(busy_id).lease_owner == "elsewhere:1:x"
            with Session(eng) as db:  # the busy worker dies: its lease runs out
                db.execute(sa.update(Job).where(Job.id == busy_id).values(lease_until=sa.func.now()))
                db.commit()
            await b.recover()
            assert job(busy_id).state == "queued" and job(busy_id).lease_owner is None
            assert await b.run_one(busy_id) == "done" and await a.run_one(busy_id) is None  # run once, by b
            sub = sv.redis.pubsub()
            await sub.subscribe(sv.key("events", alice))
            run = asyncio.create_task(a.run_one(fresh_id))

            async def claimed():  # a's "running" event: it has claimed the job (lease written) and started it
                async for m in sub.listen():
                    if m["type"] == "message" and json.loads(m["data"]) == {"type": "job", "id": fresh_id,
                                                                            "state": "running"}:  # fmt: skip
                        return

            await asyncio.wait_for(claimed(), 60)
            await sub.aclose()
            assert job(fresh_id).lease_owner == a.worker_id
            with Session(eng) as db:  # another pool took it over (say, after a's lease lapsed in a pause)
                db.execute(sa.update(Job).where(Job.id == fresh_id).values(lease_owner=b.worker_id))
                db.commit()
            assert await run is None  # a stopped and recorded nothing
            return job(fresh_id), b.worker_id
        finally:
            await sv.aclose()

    try:
        taken, b_id = asyncio.run(pools())
        assert taken.state == "running" and taken.lease_owner == b_id and taken.result is None
        done = job(busy_id)
        assert done.state == "done" and done.result["metrics"] and done.lease_owner is None
    finally:
        eng.dispose()
        clean_prefix(s)


def test_websocket_events_reach_only_their_owner(api):
    alice_id = api("GET", "/me", "alice").json()["id"]
    with api.c.websocket_connect("/api/v1/ws") as bad:
        bad.send_json({"token": "nope"})
        assert bad.receive_json() == {"type": "error", "detail": "access token invalid"}
    with api.c.websocket_connect("/api/v1/ws") as wa, api.c.websocket_connect("/api/v1/ws") as wb:
        wa.send_json({"token": api.token("alice")})
        wb.send_json({"token": api.token("bob")})
        assert wa.receive_json()["type"] == wb.receive_json()["type"] == "subscribed"
        wb.send_json({"subscribe": alice_id})  # bob asks for alice's channel
        assert wb.receive_json()["type"] == "error"
        a_bot = api("POST", "/bots", "alice", json={"name": "ws-a", "strategy": "ema_cross"}).json()
        b_bot = api("POST", "/bots", "bob", json={"name": "ws-b", "strategy": "ema_cross"}).json()
        assert wa.receive_json() == {"type": "bot", "id": a_bot["id"], "state": "created"}
        assert wb.receive_json() == {"type": "bot", "id": b_bot["id"], "state": "created"}  # not alice's
        api("DELETE", f"/bots/{a_bot['id']}", "alice")
        assert wa.receive_json() == {"type": "bot", "id": a_bot["id"], "state": "deleted"}
    with api.c.websocket_connect("/api/v1/ws") as wr:  # an admin may follow anyone
        wr.send_json({"token": api.token("root")})
        wr.receive_json()
        wr.send_json({"subscribe": alice_id})
        assert wr.receive_json() == {"type": "subscribed", "user": alice_id}
        bot = api("POST", "/bots", "alice", json={"name": "ws-c", "strategy": "ema_cross"}).json()
        assert wr.receive_json()["id"] == bot["id"]


# --- bots run by the service ----------------------------------------------------------------------------------------
def _until(sub, pred, timeout=120):
    "The first event on a subscription that satisfies `pred` (no polling of the API)."
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = sub.get_message(timeout=max(end - time.monotonic(), 0.1))
        if m and m["type"] == "message":
            ev = json.loads(m["data"])
            if pred(ev):
                return ev
    raise AssertionError("no such event in time")


def test_bots_start_trade_kill_resume_stop_and_restart(pg, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMEBOT_SETTINGS", str(Path(__file__).resolve().parent.parent / "settings.ini"))
    s = service_settings(pg, store=tmp_path / "store.duckdb", api_rate_per_min=100_000, bots_dir=str(tmp_path / "bots"))
    s = s.model_copy(update={"live": s.live.model_copy(update={"kill_file": str(tmp_path / "GLOBAL_KILL")})})
    r = redis.Redis.from_url(s.enterprise.redis_url)
    try:
        with TestClient(create_app(s)) as c:
            api = Api(c, s)
            alice = api("GET", "/me", "alice").json()["id"]
            sub = r.pubsub()
            sub.subscribe(f"{s.enterprise.redis_prefix}:events:{alice}")
            cfg = {"feed": "sim", "speed": 400, "seed": 7}  # about 36 s of simulated launches, paced
            bot = api(
                "POST", "/bots", "alice", json={"name": "sniper", "strategy": "pump_launch", "config": cfg}
            ).json()
            bid = bot["id"]
            assert api("POST", f"/bots/{bid}/start", "bob").status_code == 404  # not bob's
            assert api("POST", f"/bots/{bid}/start", "alice").json()["state"] == "running"
            fill = _until(sub, lambda e: e["type"] == "fill" and e["run_id"] == f"bot-{bid}")
            assert fill["qty"] > 0 and fill["price"] > 0
            assert api("POST", f"/bots/{bid}/kill", "vic", json={}).status_code in (403, 404)
            assert bid not in api("POST", "/risk/kill", "bob", json={"reason": "bob's panic"}).json()["killed"]
            killed = api("POST", f"/bots/{bid}/kill", "alice", json={"reason": "test kill"})
            assert killed.json()["state"] == "halted"
            halted = _until(sub, lambda e: e["type"] == "status" and e["risk"]["state"] == "halted")
            assert "test kill" in halted["risk"]["reason"]
            st = api("GET", f"/bots/{bid}/status", "alice").json()
            assert st["state"] == "halted" and st["node"]["run_id"] == f"bot-{bid}"
            assert api("GET", f"/bots/{bid}/status", "bob").status_code == 404
            assert api("GET", f"/bots/{bid}/ledger", "alice").status_code == 409  # running: it holds its ledger
            assert [b["killed"] for b in api("GET", "/risk", "alice").json() if b["bot"] == bid] == [True]
            assert api("POST", f"/bots/{bid}/resume", "alice").json()["state"] == "running"
            _until(sub, lambda e: e["type"] == "status" and e["risk"]["state"] != "halted")
            assert api("POST", f"/bots/{bid}/stop", "alice").json()["state"] == "stopped"
            led = api("GET", f"/bots/{bid}/ledger", "alice").json()
            assert len(led["fills"]) >= 1 and {f["client_id"] for f in led["fills"]} <= {
                o["client_id"] for o in led["orders"]
            }
            # the admin's kill switch reaches every bot and the machine's own kill file
            assert api("POST", f"/bots/{bid}/start", "alice").json()["state"] == "running"  # resumes its run
            everyone = api("POST", "/risk/kill", "root", json={"reason": "admin stop", "flatten": True}).json()
            assert bid in everyone["killed"] and everyone["global"] and (tmp_path / "GLOBAL_KILL").exists()
            _until(sub, lambda e: e["type"] == "status" and e["risk"]["state"] == "halted")
            api("POST", "/risk/resume", "root")
            assert not (tmp_path / "GLOBAL_KILL").exists()
            assert api("DELETE", f"/bots/{bid}", "alice").status_code == 400  # running: stop it first
        # the service stopped (its bots with it); a new one brings the running bot back
        with Session(sa.create_engine(db_url(pg), poolclass=sa.pool.NullPool)) as db:
            assert db.get(Bot, bid).state in ("running", "halted")
        with TestClient(create_app(s)) as c:
            assert c.app.state.bots.running(bid)
            _until(sub, lambda e: e["type"] == "status" and e.get("run_id") == f"bot-{bid}")  # its node is up
            again = Api(c, s)
            end = again("POST", f"/bots/{bid}/stop", "alice").json()
            assert end["state"] == "stopped", end["error"]
            acts = [e["action"] for e in again("GET", "/audit", "root", params={"limit": 200}).json()]
        assert {"bot.start", "bot.kill", "bot.resume", "bot.stop", "risk.kill", "risk.resume"} <= set(acts)
    finally:
        clean_prefix(s)


def test_a_bots_ledger_in_postgres_is_read_while_it_trades(pg, tmp_path, monkeypatch):
    "With `[enterprise] database_enabled`, a running bot's orders and fills are read from PostgreSQL (no 409)."
    monkeypatch.setenv("MEMEBOT_SETTINGS", str(Path(__file__).resolve().parent.parent / "settings.ini"))
    s = service_settings(pg, store=tmp_path / "store.duckdb", api_rate_per_min=100_000, bots_dir=str(tmp_path / "bots"),
                         database_enabled=True)  # fmt: skip
    r = redis.Redis.from_url(s.enterprise.redis_url)
    try:
        with TestClient(create_app(s)) as c:
            api = Api(c, s)
            sub = r.pubsub()
            sub.subscribe(f"{s.enterprise.redis_prefix}:events:{api('GET', '/me', 'alice').json()['id']}")
            cfg = {"feed": "sim", "speed": 400, "seed": 7}
            bid = api("POST", "/bots", "alice", json={"name": "pg", "strategy": "pump_launch", "config": cfg}).json()[
                "id"
            ]
            assert api("POST", f"/bots/{bid}/start", "alice").json()["state"] == "running"
            fill = _until(sub, lambda e: e["type"] == "fill" and e["run_id"] == f"bot-{bid}")
            assert c.app.state.bots.running(bid)
            led = api("GET", f"/bots/{bid}/ledger", "alice")
            assert led.status_code == 200, led.text
            assert fill["client_id"] in {f["client_id"] for f in led.json()["fills"]}
            assert {f["client_id"] for f in led.json()["fills"]} <= {o["client_id"] for o in led.json()["orders"]}
            assert api("GET", f"/bots/{bid}/ledger", "bob").status_code == 404
            assert not list((tmp_path / "bots").rglob("*.duckdb"))  # no ledger file: it is in PostgreSQL
            assert api("POST", f"/bots/{bid}/stop", "alice").json()["state"] == "stopped"
            after = api("GET", f"/bots/{bid}/ledger", "alice").json()
            assert len(after["fills"]) >= len(led.json()["fills"])
            from memebot.api.bots import read_ledger

            direct = read_ledger(c.app.state.bots.bot_settings(bid), f"bot-{bid}")  # the ledger's own reading
            for k, key in (("orders", "client_id"), ("fills", "client_id"), ("positions", "symbol")):
                srt = lambda rows: sorted(rows, key=lambda x: (x[key], x.get("ts") or 0))  # noqa: E731
                assert srt(after[k]) == srt(direct[k]), k  # the owner-filtered SQL reads the same rows
            from memebot.db import Principal, async_engine, owned_ledger, sessions

            async def as_user(name, role):  # the data layer itself, with no route in front of it
                eng = async_engine(settings=s)
                try:
                    async with sessions(eng)() as ss:
                        uid = api("GET", "/me", name).json()["id"]
                        return await owned_ledger(ss, Principal(uid, name, role), bid)
                finally:
                    await eng.dispose()

            assert asyncio.run(as_user("bob", "trader")) == {"orders": [], "fills": [], "positions": []}
            assert len(asyncio.run(as_user("alice", "trader"))["fills"]) == len(after["fills"])
            sub = r.pubsub()  # only what comes after the restart
            sub.subscribe(f"{s.enterprise.redis_prefix}:events:{api('GET', '/me', 'alice').json()['id']}")
            assert api("POST", f"/bots/{bid}/start", "alice").json()["state"] == "running"  # resumes its run
            n = len(after["fills"])  # its run goes on from the fills in PostgreSQL, caught up by replaying its market
            _until(sub, lambda e: e["type"] == "status" and e.get("run_id") == f"bot-{bid}" and e["fills"] >= n)
            end = api("POST", f"/bots/{bid}/stop", "alice").json()
            assert end["state"] == "stopped", end["error"]
    finally:
        clean_prefix(s)


def test_control_characters_are_a_clear_4xx(api):
    "NUL bytes reach neither PostgreSQL (which refuses them: a 500 schemathesis found) nor a command line."
    assert api("GET", "/bots", "alice", params={"state": "run\x00ning"}).status_code == 422
    assert api("GET", "/audit", "root", params={"action": "lo\x00gin"}).status_code == 422
    r = api("POST", "/backtests", "alice", json={"strategy": "ema_cross", "start": "2024\x00-01-01"})
    assert r.status_code == 422 and "start: control characters" in r.text
    assert api.login("ali\x00ce", "x\x00y").json()["detail"] == "wrong username or password"
    r = api("POST", "/bots", "alice", json={"name": "ok", "strategy": "ema_cross", "params": {"fast\x01": 3}})
    assert r.status_code == 422 and "params.fast" in r.text


# --- the dashboard in a real headless Chromium ----------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_dashboard_in_chromium(pg, tmp_path, memebot, cli_env, monkeypatch):
    """Log in, make and start a paper bot, see a fill arrive live, press kill and see HALTED, submit a backtest and see
    its tearsheet; a viewer's page has no buttons. Screenshots are saved under the test's temporary folder."""
    if CHROMIUM is None:
        if os.environ.get("CI") or os.environ.get("MEMEBOT_REQUIRE_SHARED") == "1":
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright
    from memebot.commands.service import listening_socket

    memebot("sim", "--minutes", "30", "--seed", "3", "--launches", "2", "--tf", "5m", check=True)
    monkeypatch.setenv("MEMEBOT_SETTINGS", cli_env["MEMEBOT_SETTINGS"])
    s = service_settings(
        pg, store=cli_env["MEMEBOT_STORE_PATH"], api_rate_per_min=100_000, bots_dir=str(tmp_path / "bots")
    )
    live = s.live.model_copy(update={"kill_file": str(tmp_path / "KILL")})
    s = s.model_copy(
        update={"live": live, "backtest": s.backtest.model_copy(update={"output_dir": str(tmp_path / "bt")})}
    )
    sock = listening_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(s), log_level="warning"))
    th = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]  # fmt: skip
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(base + "/")
            page.fill("#username", "alice")
            page.fill("#password", PASSWORDS["alice"])
            page.click("#login-btn")
            expect(page.locator("#who")).to_have_text("alice (trader)")
            page.fill("#bot-name", "web-bot")
            page.fill("#bot-speed", "300")
            page.click("#new-bot button")
            row = page.locator("#bots tr", has_text="web-bot")
            expect(row).to_have_count(1)
            bid = row.get_attribute("data-bot")
            page.click(f"#start-{bid}")
            expect(page.locator(f"#state-{bid}")).to_have_text("RUNNING")
            expect(page.locator("#fills li").first).to_contain_text("web-bot", timeout=120_000)  # a fill, live
            page.screenshot(path=str(tmp_path / "running.png"))
            page.click(f"#kill-{bid}")
            expect(page.locator(f"#state-{bid}")).to_have_text("HALTED", timeout=30_000)
            page.locator(f"#bot-{bid}").click()
            expect(page.locator("#risk")).to_contain_text("halted", timeout=30_000)  # the node says so too
            page.screenshot(path=str(tmp_path / "halted.png"))
            page.fill("#bt-tf", "5m")
            page.click("#backtest button")
            expect(page.locator("#bt-result")).to_contain_text("done", timeout=120_000)
            expect(page.locator("#tearsheet")).to_be_visible()
            page.screenshot(path=str(tmp_path / "backtest.png"))
            page.click(f"#stop-{bid}")
            expect(page.locator(f"#state-{bid}")).to_have_text("STOPPED", timeout=60_000)
            viewer = browser.new_page()
            viewer.goto(base + "/dashboard")
            viewer.fill("#username", "vic")
            viewer.fill("#password", PASSWORDS["vic"])
            viewer.click("#login-btn")
            expect(viewer.locator("#who")).to_have_text("vic (viewer)")
            assert viewer.locator("button.act").count() == 0 and viewer.locator("#backtest").count() == 0
            viewer.screenshot(path=str(tmp_path / "viewer.png"))
            browser.close()
        for shot in ("running", "halted", "backtest", "viewer"):
            assert (tmp_path / f"{shot}.png").stat().st_size > 10_000
    finally:
        server.should_exit = True
        th.join(timeout=60)
        clean_prefix(s)


def test_market_data_and_models(pg, tmp_path, memebot, cli_env, monkeypatch):
    s = service_settings(pg, api_rate_per_min=100_000)
    st = s.store.model_copy(update={"path": cli_env["MEMEBOT_STORE_PATH"]})
    ai = s.ai.model_copy(update={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    s = s.model_copy(update={"store": st, "ai": ai})
    try:
        with TestClient(create_app(s)) as c:
            api = Api(c, s)
            assert api("GET", "/market/inventory", "vic").status_code == 404  # no store yet: said plainly
            memebot("sim", "--minutes", "30", "--seed", "3", "--launches", "2", "--tf", "1m", check=True)
            inv = api("GET", "/market/inventory", "vic").json()
            sym = next(r["symbol"] for r in inv if r["kind"] == "candles")
            got = api("GET", "/market/candles", "vic", params={"symbol": sym, "tf": "1m", "limit": 5}).json()
            assert len(got["rows"]) == 5 and all(len(r) == 6 and r[2] >= r[3] for r in got["rows"])
            assert [k for k in redis.Redis().scan_iter(f"{s.enterprise.redis_prefix}:cache:*")]  # kept in Redis
            assert api("GET", "/market/candles", "vic", params={"symbol": "x;drop", "tf": "1m"}).status_code == 422
            assert api("GET", "/market/inventory").status_code == 401
            assert api("GET", "/models", "vic").json() == []  # an empty registry
            import numpy as np
            import pandas as pd
            from memebot.models.base import make_model
            from memebot.models.registry import log_and_register, tracking_uri

            X, y = pd.DataFrame({"a": np.arange(60.0)}), np.arange(60) % 2
            info = {"family": "majority", "params": {}}
            v = log_and_register(
                make_model("majority").fit(X, y), "api-model", tracking_uri(s), info, "fp", reference_X=X
            )
            assert [(m["name"], m["aliases"]) for m in api("GET", "/models", "vic").json()] == [("api-model", [])]
            assert api("POST", "/models/api-model/promote", "alice", json={"version": int(v)}).status_code == 403
            ok = api("POST", "/models/api-model/promote", "root", json={"version": int(v)})
            assert ok.json() == {"name": "api-model", "alias": "champion", "version": int(v)}
            assert api("GET", "/models", "vic").json()[0]["aliases"] == ["champion"]
            nope = api("POST", "/models/api-model/promote", "root", json={"version": int(v) + 5})
            assert nope.status_code == 404 and "api-model" in nope.json()["detail"]
    finally:
        clean_prefix(s)


def _live_settings(pg, tmp_path, **over):
    "Service settings with the [live] switches on, each bot and wallet under `tmp_path`."
    s = service_settings(pg, store=tmp_path / "store.duckdb", bots_dir=str(tmp_path / "bots"),
                         wallets_dir=str(tmp_path / "wallets"), api_rate_per_min=100_000, **over)  # fmt: skip
    on = {"live_trading_enabled": True, "paper_trading_mode": False, "kill_file": str(tmp_path / "KILL")}
    return s.model_copy(update={"live": s.live.model_copy(update=on)})


def test_live_bot_guards(pg, tmp_path):
    "Wallets and live bots: admins only without multi_user_enabled; nothing starts without live_bots_enabled."
    from solders.keypair import Keypair

    s = _live_settings(pg, tmp_path)
    kp = Keypair()
    try:
        with TestClient(create_app(s)) as c:
            api = Api(c, s)
            new = {"name": "main", "chain": "solana", "secret": str(kp)}
            r = api("POST", "/wallets", "alice", json=new)
            assert r.status_code == 403 and "multi_user_enabled" in r.json()["detail"]
            assert api("POST", "/wallets", "vic", json=new).status_code == 403  # a viewer never
            w = api("POST", "/wallets", "root", json=new)
            assert w.status_code == 201 and w.json()["address"] == str(kp.pubkey())
            cfg = {"wallet_id": w.json()["id"], "symbols": [str(Keypair().pubkey())]}
            live = {"name": "real-money", "strategy": "ema_cross", "mode": "live", "config": cfg}
            assert api("POST", "/bots", "alice", json=live).status_code == 403
            bot = api("POST", "/bots", "root", json=live)
            assert bot.status_code == 201, bot.text  # storable where the service's own settings allow live trading
            r = api("POST", f"/bots/{bot.json()['id']}/start", "root")
            assert r.status_code == 400 and r.json()["field"] == "mode" and "live_bots_enabled" in r.json()["detail"]
            assert not (tmp_path / "bots").exists()  # no process, no folder
            assert api("GET", f"/bots/{bot.json()['id']}", "root").json()["state"] == "created"  # never a paper run
    finally:
        clean_prefix(s)


def test_a_live_bot_trades_with_its_owners_wallet(pg, tmp_path, monkeypatch):
    """A trader adds a wallet, creates a live bot on the loopback Solana chain (LiteSVM), acknowledges its opening
    balance, starts it, sees its round trip arrive live, stops it; the chain moved only that wallet, and its key never
    left the service. Another user can neither see the wallet nor sign with it."""
    from solders.keypair import Keypair
    from memebot.exec.solana import ata_address
    from memebot.strategy import load_user_strategies
    from memebot.testing import LocalChain, LocalChainServer, LocalJupiter

    SOL = 10**9
    chain = LocalChain()
    jup = LocalJupiter(chain)
    mint = chain.create_mint(6)
    jup.create_pool(mint, 10**15, 100 * SOL)
    me, service_key = Keypair(), Keypair()  # the service's own key is in its environment: the bot must not use it
    chain.airdrop(me.pubkey(), 20 * SOL)
    chain.airdrop(service_key.pubkey(), 5 * SOL)
    srv = LocalChainServer(chain, jup, block_time_s=0.1).start()
    (tmp_path / "strats").mkdir()
    (tmp_path / "strats" / "rt.py").write_text(ROUND_TRIP)
    for k, v in srv.endpoints().items():  # the bots' processes inherit the service's environment
        monkeypatch.setenv(f"MEMEBOT_{k.replace('.', '_').upper()}", v)
    for k, v in {"SETTINGS": str(Path(__file__).resolve().parent.parent / "settings.ini"),
                 "SOLANA_PRIVATE_KEY": str(service_key), "RISK_SAFETY_ALLOW_MINT_AUTHORITY": "true",
                 "RISK_SAFETY_MIN_POOL_AGE_S": "0", "BACKTEST_STRATEGY_DIR": str(tmp_path / "strats"),
                 "LIVE_LIVE_TRADING_ENABLED": "true", "LIVE_PAPER_TRADING_MODE": "false"}.items():  # fmt: skip
        monkeypatch.setenv(f"MEMEBOT_{k}", v)
    load_user_strategies(tmp_path / "strats")  # the service checks a bot's strategy in its own process too
    s = _live_settings(pg, tmp_path, live_bots_enabled=True, multi_user_enabled=True)
    r = redis.Redis.from_url(s.enterprise.redis_url)
    secret = str(me)
    try:
        with TestClient(create_app(s)) as c:
            api = Api(c, s)
            me_ = api("GET", "/me", "alice")
            assert me_.status_code == 200, me_.text
            alice = me_.json()["id"]
            sub = r.pubsub()
            sub.subscribe(f"{s.enterprise.redis_prefix}:events:{alice}")
            bad = api("POST", "/wallets", "alice", json={"name": "x", "chain": "solana", "secret": "sEcReT-nOt-A-kEy"})
            assert bad.status_code == 400 and bad.json()["field"] == "secret" and "sEcReT" not in bad.text
            w = api("POST", "/wallets", "alice", json={"name": "main", "chain": "solana", "secret": secret}).json()
            assert w["address"] == str(me.pubkey()) and set(w) == {"id", "owner_id", "name", "chain", "address",
                                                                 "created_at"}  # fmt: skip
            key = tmp_path / "wallets" / f"user-{alice}" / f"wallet-{w['id']}.key"
            assert key.stat().st_mode & 0o777 == 0o600 and Keypair.from_bytes(bytes(json.loads(key.read_text()))) == me
            assert (
                api("GET", "/wallets", "bob").json() == []
                and api("GET", f"/wallets/{w['id']}", "bob").status_code == 404
            )
            cfg = {"chain": "solana", "wallet_id": w["id"], "symbols": [str(mint)], "tf": "1s", "poll": 0.1,
                   "cosigners": [jup.cosigners[0]]}  # fmt: skip
            body = {"name": "live-rt", "strategy": "cli_round_trip", "mode": "live", "config": cfg}
            stolen = api("POST", "/bots", "bob", json=body)
            assert stolen.status_code == 400 and stolen.json()["field"] == "config.wallet_id"
            made = api("POST", "/bots", "alice", json=body)
            assert made.status_code == 201, made.text
            bid = made.json()["id"]
            # a new wallet's balance is not in the bot's ledger yet: the node refuses to trade until it is accepted
            assert api("POST", f"/bots/{bid}/start", "alice").json()["state"] == "running"
            failed = _until(sub, lambda e: e["type"] == "bot" and e["id"] == bid and e["state"] == "failed", 90)
            assert "reconcile" in failed["error"]
            assert api("POST", f"/bots/{bid}/reconcile", "bob", json={}).status_code == 404
            rep = api("POST", f"/bots/{bid}/reconcile", "alice", json={}).json()
            assert rep["wallet"] == str(me.pubkey()) and not rep["ok"] and not rep["ok_now"]
            assert [d["asset"] for d in rep["differences"]] == ["SOL"] and rep["differences"][0]["chain"] == 20 * SOL
            assert api("POST", f"/bots/{bid}/reconcile", "alice", json={"acknowledge": True}).json()["ok_now"]
            # now it trades: buy, then sell, each a swap signed with alice's key, heard live
            assert api("POST", f"/bots/{bid}/start", "alice").json()["state"] == "running"
            assert api("POST", f"/bots/{bid}/reconcile", "alice", json={}).status_code == 400  # not while it runs
            fills = [_until(sub, lambda e: e["type"] == "fill" and e["run_id"] == f"bot-{bid}", 90) for _ in range(2)]
            assert [f["side"] for f in fills] == ["buy", "sell"] and fills[0]["qty"] == fills[1]["qty"] > 0
            assert api("POST", f"/bots/{bid}/stop", "alice").json()["state"] == "stopped"
            led = api("GET", f"/bots/{bid}/ledger", "alice").json()
            assert [f["side"] for f in led["fills"]] == ["buy", "sell"] and led["positions"] == []
            assert api("POST", f"/bots/{bid}/reconcile", "alice", json={}).json()["ok"]  # the ledger is the chain
            assert chain.token_balance(ata_address(me.pubkey(), mint)) == 0
            assert chain.svm.get_balance(me.pubkey()) < 20 * SOL  # fees and price impact came out of alice's wallet
            assert chain.svm.get_balance(service_key.pubkey()) == 5 * SOL  # and none out of the service's
            # a wallet a bot signs with stays; once the bot is gone, its key file goes with it
            assert api("DELETE", f"/wallets/{w['id']}", "alice").status_code == 400
            assert api("DELETE", f"/bots/{bid}", "alice").status_code == 204
            assert api("DELETE", f"/wallets/{w['id']}", "bob").status_code == 404
            assert api("DELETE", f"/wallets/{w['id']}", "alice").status_code == 204 and not key.exists()
            audit = api("GET", "/audit", "root", params={"limit": 200}).text
        assert {"wallet.add", "bot.reconcile", "wallet.remove"} <= {e["action"] for e in json.loads(audit)}
        logs = "".join(p.read_text() for p in (tmp_path / "bots").rglob("*.log"))
        assert logs and secret not in logs and secret not in "".join(api.bodies) + audit
    finally:
        srv.stop()
        clean_prefix(s)
