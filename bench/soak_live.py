"""Live soak with RPC faults (issue 18): a live Solana node trading on the loopback chain while its RPC fails.

The loopback chain (LiteSVM, the Jupiter stand-in, a block every 0.4 s) answers a share of every HTTP request —
JSON-RPC, quotes, swaps, prices — with HTTP 429, holds another share back for a second (a timeout for the node's 0.8 s
client), and drops some sent transactions (answered, never landed: the broker re-sends the same signed transaction and
must not pay twice). A market thread trades the pool both ways so prices move. The node (`memebot live run --strategy
ema_cross` on 1 s bars from Jupiter prices, the risk engine and token safety on, /metrics on) is scraped every 10 s.
At the end: orders by final status, faults injected, the broker's retries, RSS growth, error lines in the log, and
whether the ledger still equals the chain to the lamport.

With `--prometheus`, Debian's Prometheus scrapes the node every 5 s and evaluates the shipped rules
(deploy/prometheus/rules/memebot.yml) as deployed, their `for:` durations kept; the run reports when each alert went
pending and firing, and the highest error ratio the RPC-error rule saw. A 10-minute run at --rate-429 0.15 must fire
MemebotRpcErrors (over 10% of chain requests failing for 5 minutes) and nothing else.

Usage: PYTHONPATH=. .venv/bin/python bench/soak_live.py [--seconds 300] [--rate-429 0.05] [--rate-timeout 0.02]
       [--prometheus]
"""

import argparse, base64, json, math, os, random, re, shutil, signal, subprocess, sys, tempfile, threading, time
from pathlib import Path

import httpx, numpy as np
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.transaction import VersionedTransaction

from memebot.core import SOL_MINT
from memebot.testing import Faults, LocalChain, LocalChainServer, LocalJupiter

EXE = Path(sys.executable).parent / "memebot"
RULES = Path(__file__).resolve().parent.parent / "deploy/prometheus/rules/memebot.yml"
sys.path.insert(0, str(Path(__file__).parent))
from soak import free_port  # noqa: E402


def live_env(d: Path, key: Keypair, srv: LocalChainServer, **more) -> dict:
    "A `memebot` environment for a live Solana account on the loopback chain: data under `d`, live trading on, token"
    " safety relaxed for the stand-in's fresh pools (a mint authority, no age, one pool holding the supply)."
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")}
    env |= {"MEMEBOT_STORE_PATH": str(d / "m.duckdb"), "MEMEBOT_STORE_LEDGER_DIR": str(d / "runs"),
            "MEMEBOT_LIVE_KILL_FILE": str(d / "KILL"), "MEMEBOT_SOLANA_PRIVATE_KEY": str(key),
            "MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true", "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false",
            "MEMEBOT_RISK_SAFETY_ALLOW_MINT_AUTHORITY": "true", "MEMEBOT_RISK_SAFETY_MIN_POOL_AGE_S": "0",
            "MEMEBOT_RISK_SAFETY_MAX_TOP10_HOLDER_PCT": "100"}  # fmt: skip
    return env | {f"MEMEBOT_{k.replace('.', '_').upper()}": v for k, v in srv.endpoints().items()} | more


def scrape(port: int) -> dict:
    txt = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out = {}
    for name in ("process_resident_memory_bytes", "memebot_node_events_total", "memebot_solana_orders_total",
                 "memebot_chain_requests_total"):  # fmt: skip
        for labels, v in re.findall(rf"^{name}(\{{[^}}]*\}})? ([0-9.e+]+)$", txt, re.M):
            out[name] = out.get(name, 0.0) + float(v)
            if labels:
                out[name + labels] = out.get(name + labels, 0.0) + float(v)
    return out


def start_prometheus(d: Path, node_port: int) -> tuple[subprocess.Popen, str]:
    "Prometheus scraping the node every 5 s and evaluating the shipped rules as deployed; (process, its URL)."
    exe = shutil.which("prometheus")
    if exe is None:
        sys.exit("error: --prometheus: no prometheus binary (apt-get install prometheus)")
    port = free_port()
    cfg = {"global": {"scrape_interval": "5s", "evaluation_interval": "5s"}, "rule_files": [str(RULES)],
           "scrape_configs": [{"job_name": "memebot-node",
                               "static_configs": [{"targets": [f"127.0.0.1:{node_port}"]}]}]}  # fmt: skip
    (d / "prometheus.yml").write_text(json.dumps(cfg))  # JSON is YAML
    p = subprocess.Popen([exe, f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                         stderr=open(d / "prometheus.log", "w"))  # fmt: skip
    return p, f"http://127.0.0.1:{port}"


def alert_timeline(url: str, start: float, end: float) -> dict[str, dict[str, float]]:
    "Seconds after `start` (wall clock) at which each alert was first pending and first firing (the ALERTS series)."
    res = httpx.get(f"{url}/api/v1/query_range", params={"query": "ALERTS", "start": start, "end": end, "step": "5s"},
                    timeout=30).json()["data"]["result"]  # fmt: skip
    out: dict = {}
    for series in res:
        name, state = series["metric"]["alertname"], series["metric"]["alertstate"]
        first = min(float(t) for t, _ in series["values"]) - start
        out.setdefault(name, {})[state] = min(out.get(name, {}).get(state, math.inf), first)
    return out


def peak_error_ratio(url: str, seconds: float) -> dict[str, float]:
    "The highest 5-minute error ratio of chain requests, per API, over the last `seconds`."
    q = f"max by (api) (max_over_time(memebot:chain_requests:error_ratio5m[{max(int(seconds), 10)}s]))"
    res = httpx.get(f"{url}/api/v1/query", params={"query": q}, timeout=30).json()["data"]["result"]
    return {r["metric"].get("api", "?"): float(r["value"][1]) for r in res}


def market(chain, jup, mint, trader: Keypair, stop: threading.Event, rng: random.Random):
    "Someone trades the pool both ways every 0.3 s, so prices move."
    while not stop.wait(0.3):
        buy = rng.random() < 0.5
        held = chain.token_balance(chain.ata(trader.pubkey(), mint)) or 0
        a, b, amt = (SOL_MINT, str(mint), rng.randint(1, 20) * 10**8) if buy or held == 0 else \
            (str(mint), SOL_MINT, held * rng.randint(1, 9) // 10)  # fmt: skip
        try:
            q = jup.quote({"inputMint": a, "outputMint": b, "amount": str(amt), "slippageBps": "300"})
            raw = jup.swap_tx({"quoteResponse": q, "userPublicKey": str(trader.pubkey())})["swapTransaction"]
            tx = VersionedTransaction.from_bytes(base64.b64decode(raw))
            chain.process(VersionedTransaction.populate(tx.message, [trader.sign_message(to_bytes_versioned(
                tx.message)), *tx.signatures[1:]]))  # fmt: skip
        except Exception as e:  # a trade that fails (an amount too small) is skipped
            print("market trade skipped:", repr(e)[:100], flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--rate-429", type=float, default=0.05)
    ap.add_argument("--rate-timeout", type=float, default=0.02)
    ap.add_argument("--drop-sends", type=int, default=3, help="sent transactions that never land, spread over the run")
    ap.add_argument("--prometheus", action="store_true", help="scrape with Prometheus and report the alerts it fired")
    a = ap.parse_args()
    chain = LocalChain()
    jup = LocalJupiter(chain)
    mint = chain.create_mint(6)
    jup.create_pool(mint, 10**15, 1_000 * 10**9)
    me, trader = Keypair(), Keypair()
    chain.airdrop(me.pubkey(), 100 * 10**9)
    chain.airdrop(trader.pubkey(), 10_000 * 10**9)
    faults = Faults(rate_429=a.rate_429, rate_timeout=a.rate_timeout, delay_s=1.0, seed=7)
    stop, rng, port = threading.Event(), random.Random(7), free_port()
    with tempfile.TemporaryDirectory() as d, LocalChainServer(chain, jup, faults=faults, block_time_s=0.4) as srv:
        d = Path(d)
        env = live_env(d, me, srv, MEMEBOT_MONITORING_LOG_FILE=str(d / "node.log"), MEMEBOT_DATA_HTTP_TIMEOUT_S="0.8")
        live = ["--yes-i-mean-live", "--allow-cosigner", jup.cosigners[0]]
        srv.faults = Faults()  # the opening reconciliation without faults
        subprocess.run([EXE, "live", "reconcile", "--acknowledge", *live], env=env, check=True, capture_output=True)
        srv.faults = faults
        threading.Thread(target=market, args=(chain, jup, mint, trader, stop, rng), daemon=True).start()
        out = d / "run.json"
        cmd = [EXE, "live", "run", "--strategy", "ema_cross", "--param", "fast=2", "--param", "slow=5", "--param",
               "size=0.01", "--mint", str(mint), "--tf", "1s", "--poll", "0.25", "--seconds", str(a.seconds),
               "--metrics-port", str(port), "--json", str(out), *live]  # fmt: skip
        node = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(d / "stderr.log", "w"))
        prom = start_prometheus(d, port) if a.prometheus else None  # (process, URL)
        wall0, alerts, peaks = time.time(), None, {}
        samples, t0, dropped = [], time.monotonic(), 0
        drop_at = sorted(rng.uniform(0.2, 0.8) * a.seconds for _ in range(a.drop_sends))
        try:
            while node.poll() is None:
                time.sleep(10)
                t = time.monotonic() - t0
                while drop_at and t >= drop_at[0]:
                    drop_at.pop(0)
                    faults.drop_sends += 1  # the next sent transaction never lands
                    dropped += 1
                try:
                    samples.append((t, scrape(port)))
                except httpx.HTTPError:
                    continue
                m = samples[-1][1]
                orders = {re.search(r'status="(\w+)"', k).group(1): int(v) for k, v in m.items()
                          if k.startswith("memebot_solana_orders_total{")}  # fmt: skip
                print(f"{t:6.0f} s  rss {m['process_resident_memory_bytes'] / 1e6:7.1f} MB  events "
                      f"{m.get('memebot_node_events_total', 0):>7,.0f}  orders {orders}  faults {faults.injected}",
                      flush=True)  # fmt: skip
            rc = node.wait(120)
            if prom is not None:  # up to the last scrape while the node ran (its exit would read as NodeDown)
                last_up = wall0 + samples[-1][0]
                alerts, peaks = alert_timeline(prom[1], wall0, last_up), peak_error_ratio(prom[1], a.seconds)
        finally:
            stop.set()
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
                rc = node.wait(120)
            if prom is not None:
                prom[0].terminate()
                prom[0].wait(30)
        srv.faults = Faults()
        rec = subprocess.run([EXE, "live", "reconcile", "--json", *live], env=env, capture_output=True, text=True)
        errors = sum(1 for ln in (d / "node.log").read_text().splitlines() if '"level": "error"' in ln)
        lines = (d / "node.log").read_text().splitlines()
        retries = sum(1 for ln in lines if "retry" in ln.lower())
        why = [json.loads(ln).get("reason", "") for ln in lines if '"order_final"' in ln and '"rejected"' in ln]
        doc = json.loads(out.read_text()) if out.exists() else {}
    warm = 60 if samples[-1][0] > 120 else 0  # the first minute fills caches, pools and the import of models
    ts = np.array([t for t, _ in samples if t >= warm])
    rss = np.array([m["process_resident_memory_bytes"] for t, m in samples if t >= warm])
    dt = ts - ts.mean()  # least squares in closed form (LAPACK's polyfit fails in a process that loaded LiteSVM)
    slope = float((dt * (rss - rss.mean())).sum() / (dt * dt).sum()) * 3600 if len(ts) >= 3 else float("nan")
    last = samples[-1][1]
    orders = {re.search(r'status="(\w+)"', k).group(1): int(v) for k, v in last.items()
              if k.startswith("memebot_solana_orders_total{")}  # fmt: skip
    rec_ok = json.loads(rec.stdout)["ok"] if rec.stdout else rec.stderr[-80:]
    rows = [
        ("duration", f"{samples[-1][0]:.0f} s"),
        ("faults injected (HTTP 429 / held back 1 s)", f"{faults.injected['429']} / {faults.injected['timeout']}"),
        ("sent transactions dropped (never landed)", f"{dropped}"),
        ("events (price ticks) processed", f"{last.get('memebot_node_events_total', 0):,.0f}"),
        ("orders by final status", ", ".join(f"{k} {v}" for k, v in sorted(orders.items()))),
        ("fills in the run's report", f"{len(doc.get('fills', []))}"),
        ("log lines about retries", f"{retries}"),
        ("error lines in the node's log", f"{errors}"),
        (f"RSS at {warm} s / at the end", f"{rss[0] / 1e6:.1f} MB / {rss[-1] / 1e6:.1f} MB"),
        (f"RSS growth (least squares after {warm} s)", f"{slope / 1e6:+.1f} MB/hour"),
        ("node exit code", f"{rc}"),
        ("the run's own reconciliation", f"{doc.get('reconcile')}"),
        ("`live reconcile` afterwards (ok: ledger = chain)", rec_ok),
    ]  # fmt: skip
    if alerts is not None:
        fmt = lambda t: "-" if t is None else f"{t:.0f} s"  # noqa: E731
        rows.append(("peak 5-min error ratio of chain requests", ", ".join(f"{k} {v:.1%}" for k, v in peaks.items())))
        rows += [(f"alert {n}: pending / firing at", f"{fmt(st.get('pending'))} / {fmt(st.get('firing'))}")
                 for n, st in sorted(alerts.items())] or [("alerts pending or firing", "none")]  # fmt: skip
    for k, v in rows:
        print(f"{k:<48}{v!s:>40}")
    for w in why:
        print("rejected:", w[:110])


if __name__ == "__main__":
    main()
