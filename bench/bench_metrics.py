"""Metrics overhead benchmark (issue 18): the paper node's tick-to-order latency with metrics on against off.

On: `[monitoring] metrics_enabled = true` (the tick-to-order histogram observed per order, the node's gauges and
counters set every heartbeat) and the /metrics endpoint served and scraped by a client every 100 ms (150x more often
than the shipped Prometheus config's 15 s). Off: `metrics_enabled = false`, no endpoint. The same 120k real 5m bars
and the one-order-per-event strategy of bench_paper.py; runs alternate off/on so drift hits both alike.

Usage: .venv/bin/python bench/bench_metrics.py [--events 120000] [--rounds 3] [--scrape-every 0.1] [--json OUT]
"""

import argparse, asyncio, json, sys, tempfile, threading, time
from pathlib import Path
import httpx, numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_paper import DATA, PingPong, candles, pct, settings  # noqa: E402
from memebot.core import ListFeed, SimClock, shared_dir  # noqa: E402
from memebot.config import load_settings  # noqa: E402
from memebot.obs import configure_logging, serve_metrics  # noqa: E402
from memebot.exec import VolumeParticipation  # noqa: E402
from memebot.exec.paper import PaperBroker  # noqa: E402
from memebot.live import TradingNode  # noqa: E402


def run(evs, tmp, on: bool, scrape_every_s: float = 0.1) -> dict:
    base = settings(tmp)
    s = load_settings(None, env={"MEMEBOT_LIVE_KILL_FILE": str(Path(tmp) / "KILL")},
                      overrides={**{f"risk.{k}": v for k, v in base.risk.model_dump().items()},
                                 "monitoring.metrics_enabled": on})  # fmt: skip
    node = TradingNode(PingPong(), ListFeed(evs, SimClock()), PaperBroker(VolumeParticipation(10.0, 1.0, 10.0)),
                       run_id="bench", settings=s, cash=1e9, heartbeat_s=1.0)  # fmt: skip
    stop, scrapes, srv = threading.Event(), [0], None
    if on:
        srv = serve_metrics(0, settings=s)
        url = f"http://127.0.0.1:{srv.server_port}/metrics"

        def scrape():
            with httpx.Client() as c:
                while not stop.wait(scrape_every_s):
                    c.get(url)
                    scrapes[0] += 1

        th = threading.Thread(target=scrape, daemon=True)
        th.start()
    t = time.perf_counter()
    asyncio.run(node.run(handle_signals=False))
    el = time.perf_counter() - t
    stop.set()
    if srv is not None:
        th.join()
        srv.shutdown()
    out = pct(node.latencies_ns)
    out.update(events_per_s=node.events / el, scrapes=scrapes[0])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=120_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scrape-every", type=float, default=0.1, help="seconds between /metrics scrapes when on")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    configure_logging("WARNING", "json")
    df = pd.read_parquet(shared_dir() / DATA).rename(columns={"date": "ts"})
    evs = candles(df, a.events)
    rows = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        run(evs[:5000], tmp, True)  # warm up both paths
        run(evs[:5000], tmp, False)
        for i in range(a.rounds):
            for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                r = run(evs, tmp, mode == "on", a.scrape_every)
                rows[mode].append(r)
                print(f"round {i + 1} {mode:>3}: p50 {r['p50_us']:.1f} us  p99 {r['p99_us']:.1f} us  "
                      f"{r['events_per_s']:,.0f} ev/s  scrapes {r['scrapes']}", flush=True)  # fmt: skip
    med = {m: {k: float(np.median([r[k] for r in rs])) for k in ("p50_us", "p99_us", "p999_us", "events_per_s")}
           for m, rs in rows.items()}  # fmt: skip
    added = 100 * (med["on"]["p99_us"] / med["off"]["p99_us"] - 1)
    print(f"\nmedian of {a.rounds} rounds ({a.events:,} orders each; on: scraped every {a.scrape_every:g} s)")
    print(f"{'metrics':<8}{'p50 us':>10}{'p99 us':>10}{'p99.9 us':>10}{'events/s':>12}")
    for m in ("off", "on"):
        r = med[m]
        print(f"{m:<8}{r['p50_us']:>10.1f}{r['p99_us']:>10.1f}{r['p999_us']:>10.1f}{r['events_per_s']:>12,.0f}")
    print(f"p99 added by metrics: {added:+.1f}% (target < 5%)")
    if a.json:
        Path(a.json).write_text(json.dumps({"rounds": rows, "median": med, "p99_added_pct": added}, indent=1))


if __name__ == "__main__":
    main()
