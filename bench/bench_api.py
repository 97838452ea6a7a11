"""Multi-user service benchmark (issue 17): p50/p99 latency and requests/s at 200 concurrent connections from wrk (a
second process on loopback) for reading a bot list (`GET /api/v1/bots`: token check, revocation check in Redis, user
row, rate limit, owner-filtered query) and submitting a backtest job (`POST /api/v1/backtests`: the same, plus the
strategy check, a job row, an audit row and a Redis push), beside a bare FastAPI endpoint on uvicorn (the floor) in
the same run. Each server is one uvicorn process, as `memebot api serve` runs; PostgreSQL and Redis are the local ones.

    PYTHONPATH=. .venv/bin/python bench/bench_api.py [--seconds 10] [--connections 200] [--json OUT]
"""

import argparse, json, os, re, shutil, socket, subprocess, sys, tempfile, threading, uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The floor: the smallest FastAPI endpoint, served the same way (uvicorn, one process).
from fastapi import FastAPI

bare = FastAPI()


@bare.get("/ping")
async def ping():
    return {"ok": True}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url: str, seconds: int, conns: int, headers: dict, lua: str | None = None) -> dict:
    "wrk's requests/s and latency percentiles (ms) for `url`."
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if lua:
        cmd += ["-s", lua]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    ms = lambda v, u: float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[u]
    pct = {int(p): ms(v, u) for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": pct[50],
        "p99_ms": pct[99],
        "non_2xx": int(errs.group(1)) if errs else 0,
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
    }


def seed(url: str):
    "A trader with 10 bots; the trader's username and password."
    import sqlalchemy as sa
    from sqlalchemy.orm import Session
    from memebot.api.auth import hash_password
    from memebot.db import Bot, User, db_url

    eng = sa.create_engine(db_url(url), poolclass=sa.pool.NullPool)
    with Session(eng) as s:
        u = User(username="bench", password_hash=hash_password("bench password 1"), role="trader")
        s.add(u)
        s.flush()
        s.add_all(Bot(owner_id=u.id, name=f"bot-{i}", mode="paper", strategy="ema_cross") for i in range(10))
        s.commit()
    eng.dispose()


def start(cmd, env, port):
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:  # both print a line once they listen
        if str(port) in line:
            threading.Thread(target=p.stdout.read, daemon=True).start()  # keep the pipe drained
            return p
    raise RuntimeError(f"{cmd[0]} did not start: {p.wait()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("error: wrk not found (Debian package wrk)")
    import httpx
    import redis
    from memebot.api.auth import new_secret
    from memebot.db import migrate, scratch_database

    res, procs = {}, []
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    with scratch_database() as url, tempfile.TemporaryDirectory() as tmp:
        migrate(url)
        seed(url)
        env = dict(os.environ, MEMEBOT_ENTERPRISE_API_ENABLED="true", MEMEBOT_ENTERPRISE_DATABASE_URL=url,
                   MEMEBOT_ENTERPRISE_API_SECRET_KEY=new_secret(), MEMEBOT_ENTERPRISE_REDIS_PREFIX=prefix,
                   MEMEBOT_ENTERPRISE_API_RATE_PER_MIN="1000000", MEMEBOT_ENTERPRISE_JOB_WORKERS="0",
                   MEMEBOT_SETTINGS=str(ROOT / "settings.ini"))  # fmt: skip
        try:
            mp, bp = free_port(), free_port()
            procs.append(
                start([str(Path(sys.executable).parent / "memebot"), "api", "serve", "--port", str(mp)], env, mp)
            )
            procs.append(start([sys.executable, "-m", "uvicorn", "bench_api:bare", "--app-dir", str(ROOT / "bench"),
                                "--port", str(bp), "--log-level", "info", "--no-access-log"], env, bp))  # fmt: skip
            base = f"http://127.0.0.1:{mp}/api/v1"
            tok = httpx.post(f"{base}/auth/token", data={"username": "bench", "password": "bench password 1"}).json()
            auth = {"Authorization": f"Bearer {tok['access_token']}"}
            assert len(httpx.get(f"{base}/bots", headers=auth).json()) == 10
            lua = Path(tmp) / "post.lua"
            body = json.dumps({"strategy": "ema_cross", "params": {"fast": 5, "slow": 20}, "tf": "1m"})
            lua.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                           'wrk.headers["Content-Type"] = "application/json"\n')  # fmt: skip
            n, c = a.seconds, a.connections
            res["bare FastAPI GET /ping (floor)"] = wrk(f"http://127.0.0.1:{bp}/ping", n, c, {})
            res["GET /api/v1/bots (10 bots)"] = wrk(f"{base}/bots", n, c, auth)
            res["POST /api/v1/backtests (queue a job)"] = wrk(f"{base}/backtests", n, c, auth, str(lua))
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=30)
            r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
            for k in r.scan_iter(f"{prefix}:*"):
                r.delete(k)
    print(f"{a.connections} connections, {a.seconds} s each, wrk -t2 on the same 2-core machine")
    print(f"{'endpoint':40} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for k, v in res.items():
        print(f"{k:40} {v['rps']:9,.0f} {v['p50_ms']:8.2f} {v['p99_ms']:8.2f} {v['non_2xx']:8}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
