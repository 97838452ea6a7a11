"""Sources benchmark (issue 3): parse throughput of GeckoTerminal OHLCV pages and DexScreener pair payloads (rows/s),
each beside a peer parser in the same run, and a 100k-candle backfill from a local GeckoTerminal (wall time, and the
share spent outside the HTTP wait) beside a bare httpx loop writing the same pages.
Usage: .venv/bin/python bench/bench_sources.py [--rows 100000] [--repeat 5]"""

import argparse, asyncio, copy, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
NS = 1_000_000_000


def long_series(shared, n):
    """n contiguous 5m candles: real Binance memecoin candles (several symbols end to end), re-timed onto one grid."""
    f = shared / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet"
    parts, total = [], 0
    for sym in ("BONK/USDT", "PEPE/USDT", "WIF/USDT", "DOGE/USDT", "FLOKI/USDT"):
        d = pd.read_parquet(f, filters=[("symbol", "==", sym)]).sort_values("date")
        parts.append(d)
        total += len(d)
        if total >= n:
            break
    d = pd.concat(parts, ignore_index=True).head(n)
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(d)) * 300, unit="s")
    return pd.DataFrame(
        {
            "ts": ts,
            "open": d.open.to_numpy(),
            "high": d.high.to_numpy(),
            "low": d.low.to_numpy(),
            "close": d.close.to_numpy(),
            "volume": d.volume.to_numpy(),
        }
    )


def serve(n):
    """Child process: a local GeckoTerminal serving the series; prints its URL and waits for stdin to close."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from memebot.core import shared_dir
    from _gtserver import GTServer

    srv = GTServer(long_series(shared_dir(required=True), n))
    print(srv.url, flush=True)
    sys.stdin.read()
    srv.stop()


def best(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--serve", type=int, default=0)
    a = ap.parse_args()
    if a.serve:
        return serve(a.serve)
    import ccxt, httpx
    from memebot.core import shared_dir
    from memebot.config import load_settings
    from memebot.data import sources as S
    from memebot.data.backfill import backfill
    from memebot.data.store import Store, upsert, candles

    sh = shared_dir(required=True)
    res = {}

    # 1. GeckoTerminal OHLCV pages: 1000-row pages (the API maximum), JSON text -> candle DataFrame
    ser = long_series(sh, 20_000)
    pages = [json.dumps(S.render_gt_ohlcv(ser.iloc[i : i + 1000])) for i in range(0, len(ser), 1000)]
    rows = sum(1000 for _ in pages)
    t, _ = best(lambda: [S.parse_gt_ohlcv(json.loads(p), "solana", "POOL", "5m") for p in pages], a.repeat)
    res["gt_parse_rows_per_s"] = rows / t
    t, _ = best(lambda: [json.loads(p) for p in pages], a.repeat)
    res["gt_json_only_rows_per_s"] = rows / t
    bx = ccxt.binance()

    def ccxt_peer():  # ccxt's own OHLCV parser on the same rows (ms timestamps), then a DataFrame
        out = []
        for p in pages:
            lst = json.loads(p)["data"]["attributes"]["ohlcv_list"]
            r = bx.parse_ohlcvs([[x[0] * 1000, *x[1:]] for x in lst], None, "5m")
            out.append(pd.DataFrame(r, columns=["ts", "open", "high", "low", "close", "volume"]))
        return out

    t, _ = best(ccxt_peer, a.repeat)
    res["gt_peer_ccxt_rows_per_s"] = rows / t

    # 2. DexScreener pair payloads: the recorded pump.fun pairs, 30 pairs per payload (the tokens endpoint's batch)
    rec = json.loads(
        (sh / "fixtures/dexscreener/recorded_latest_dex_pairs_solana_two_pumpfun_pairs.THIRDPARTY.json").read_text()
    )
    pairs = []
    for i in range(30):
        p = copy.deepcopy(rec["pairs"][i % 2])
        p["pairAddress"] = f"{p['pairAddress'][:-4]}{i:04d}"
        pairs.append(p)
    payloads = [json.dumps({"schemaVersion": "1.0.0", "pairs": pairs, "pair": None})] * 200
    drows = 30 * len(payloads)
    t, _ = best(lambda: [S.parse_ds_pairs(json.loads(p)) for p in payloads], a.repeat)
    res["ds_parse_rows_per_s"] = drows / t
    t, _ = best(lambda: [pd.json_normalize(json.loads(p)["pairs"]) for p in payloads], a.repeat)
    res["ds_peer_json_normalize_rows_per_s"] = drows / t

    # 3. backfill of N candles from a local GeckoTerminal in another process
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(a.rows)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    url = child.stdout.readline().strip()
    try:
        st_ = load_settings(
            None, env={}, overrides={"endpoints.geckoterminal": url, "data.rate_geckoterminal_per_min": "1000000"}
        )
        t0 = int(pd.Timestamp("2024-01-01", tz="UTC").value)
        t1 = t0 + a.rows * 300 * NS
        with tempfile.TemporaryDirectory() as d:
            st = Store(Path(d) / "b.duckdb")

            async def go():
                S.HTTP_STATS.clear()
                t = time.perf_counter()
                r = await backfill(st, "geckoterminal", "solana", "POOL", "5m", t0, t1, settings=st_, limit=1000)
                wall = time.perf_counter() - t
                await S.close_http()
                return r, wall, S.HTTP_STATS["geckoterminal"]["wait_s"]

            r, wall, wait = asyncio.run(go())
            assert r["new"] == a.rows and len(candles(st, "POOL", "5m")) == a.rows
            res.update(
                backfill_rows=a.rows,
                backfill_pages=r["pages"],
                backfill_wall_s=wall,
                backfill_http_wait_s=wait,
                backfill_outside_http_share=1 - wait / wall,
            )
            # peer: a bare httpx loop over the same pages, parse, one upsert per page (no limiter, retries, checks,
            # checkpoints)
            st2 = Store(Path(d) / "p.duckdb")
            t = time.perf_counter()
            wait2 = 0.0
            with httpx.Client() as c:
                before = t1 // NS
                while True:
                    q = time.perf_counter()
                    js = c.get(
                        f"{url}/networks/solana/pools/POOL/ohlcv/minute",
                        params={"aggregate": 5, "limit": 1000, "before_timestamp": before},
                    ).json()
                    wait2 += time.perf_counter() - q
                    df = S.parse_gt_ohlcv(js, "solana", "POOL", "5m")
                    if not len(df):
                        break
                    upsert(st2, "candles", df)
                    before = int(df.ts.iloc[0].value // NS)
                    if len(df) < 1000:
                        break
            res.update(peer_wall_s=time.perf_counter() - t, peer_http_wait_s=wait2)
            assert len(candles(st2, "POOL", "5m")) == a.rows
            st.close()
            st2.close()
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}, indent=1))
    print("\n| figure | memebot | peer (same run) |\n|---|---|---|")
    print(
        f"| GeckoTerminal OHLCV pages (1000 rows, JSON text -> candle frame) | {res['gt_parse_rows_per_s'] / 1e6:.2f} M"
        f" rows/s (json.loads alone {res['gt_json_only_rows_per_s'] / 1e6:.2f} M) | ccxt `parse_ohlcvs` + DataFrame:"
        f" {res['gt_peer_ccxt_rows_per_s'] / 1e6:.2f} M rows/s |"
    )
    print(
        f"| DexScreener pair payloads (30 pairs, JSON text -> PoolSnapshot) | {res['ds_parse_rows_per_s'] / 1e3:.1f} k"
        f" pairs/s | `pd.json_normalize`: {res['ds_peer_json_normalize_rows_per_s'] / 1e3:.1f} k pairs/s |"
    )
    print(
        f"| backfill {a.rows:,} candles, {res['backfill_pages']} pages from a local server |"
        f" {res['backfill_wall_s']:.2f} s wall, {res['backfill_http_wait_s']:.2f} s HTTP wait,"
        f" {res['backfill_outside_http_share'] * 100:.0f}% outside HTTP | bare httpx loop + upsert per page:"
        f" {res['peer_wall_s']:.2f} s wall, {res['peer_http_wait_s']:.2f} s HTTP wait |"
    )


if __name__ == "__main__":
    sys.exit(main())
