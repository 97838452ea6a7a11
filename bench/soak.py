"""Bounded soak (issue 18): a paper node on a live-style Solana websocket feed with faults, for about 10 minutes.

A local websocket server (memebot.data.feeds.ReplayServer) replays the recorded Orca whirlpool account notification
of ../shared/fixtures at about 500 updates a second, drops the connection every `--drop-every` seconds, and answers
some reconnects with HTTP 503 (refused handshakes). The node (`memebot paper --feed live --strategy pump_launch`:
every pool update reaches the strategy; alerting on to a local Slack receiver; /metrics on) is scraped every 10 s for
resident memory, events and reconnects. At the end: RSS growth per hour (least squares after a 60 s warm-up),
events processed, reconnects, error lines in its JSON log, and alerts sent.

Usage: PYTHONPATH=. .venv/bin/python bench/soak.py [--seconds 600] [--drop-every 30]
"""

import argparse, asyncio, json, os, re, signal, socket, subprocess, sys, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import httpx, numpy as np

from memebot.core import shared_dir
from memebot.data.feeds import ReplayServer, renotify

EXE = Path(sys.executable).parent / "memebot"
DEDUPE = 200_000  # WsFeed's duplicate filter keeps this many recent keys: memory grows until it is full


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def feed_server(drop_every: float, box: dict, stop: threading.Event):
    "Serve account notifications until `stop`; drop each connection after `drop_every` s; refuse every 3rd reconnect."
    sd = shared_dir()
    orca = json.loads((sd / "fixtures/orca/account_whirlpool_Czfq3xZZ_SOL_USDC.solana-account.json").read_text())
    note = json.loads((sd / "fixtures/solana-rpc/ws_accountNotification_jsonParsed.json").read_text())
    value = dict(note["params"]["result"]["value"], data=orca["account"]["data"])
    box.update(pubkey=orca["pubkey"], sent=0, drops=0)

    async def script(srv, ws, subs):
        sid = next(s for m, _, s in subs if m == "accountSubscribe")
        end = time.monotonic() + drop_every
        slot = orca["slotContext"] + box["sent"]
        while time.monotonic() < end and not stop.is_set():
            await ws.send(renotify(note, sid, value=value, context={"slot": slot}))
            box["sent"] += 1
            slot += 1
            await asyncio.sleep(0.002)  # about 500 updates a second
        box["drops"] += 1
        if box["drops"] % 3 == 0:
            srv.refuse = 2  # the next two handshakes get HTTP 503
        await ws.close()

    async def main():
        async with ReplayServer(script, expect=1) as srv:
            box["url"], box["srv"] = srv.url, srv
            box["ready"].set()
            await asyncio.to_thread(stop.wait)

    asyncio.run(main())


class Slack(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):
        Slack.got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


def scrape(port: int) -> dict:
    txt = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out = {}
    for name in ("process_resident_memory_bytes", "memebot_node_events_total", "memebot_feed_reconnects_total"):
        vals = [float(m) for m in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", txt, re.M)]
        out[name] = sum(vals)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--drop-every", type=float, default=30)
    a = ap.parse_args()
    stop, box = threading.Event(), {"ready": threading.Event()}
    threading.Thread(target=feed_server, args=(a.drop_every, box, stop), daemon=True).start()
    box["ready"].wait(10)
    rx = ThreadingHTTPServer(("127.0.0.1", 0), Slack)
    threading.Thread(target=rx.serve_forever, daemon=True).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")}
        env |= {"MEMEBOT_STORE_PATH": f"{d}/store.duckdb", "MEMEBOT_STORE_LEDGER_DIR": f"{d}/runs",
                "MEMEBOT_LIVE_KILL_FILE": f"{d}/KILL", "MEMEBOT_ENDPOINTS_SOLANA_WS": box["url"],
                "MEMEBOT_MONITORING_LOG_FILE": f"{d}/node.log", "MEMEBOT_MONITORING_ALERTING_ENABLED": "true",
                "MEMEBOT_MONITORING_ALERT_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{rx.server_port}/slack/x"}  # fmt: skip
        cmd = [EXE, "paper", "--strategy", "pump_launch", "--feed", "live", "--symbols", box["pubkey"],
               "--no-dashboard", "--metrics-port", str(port), "--run-id", "soak"]  # fmt: skip
        node = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(f"{d}/stderr.log", "w"))
        samples, t0 = [], time.monotonic()
        try:
            while time.monotonic() - t0 < a.seconds:
                time.sleep(10)
                assert node.poll() is None, Path(f"{d}/stderr.log").read_text()[-3000:]
                try:
                    samples.append((time.monotonic() - t0, scrape(port)))
                except httpx.HTTPError:
                    pass
                t, m = samples[-1]
                print(f"{t:6.0f} s  rss {m['process_resident_memory_bytes'] / 1e6:7.1f} MB  events "
                      f"{m['memebot_node_events_total']:>9,.0f}  reconnects {m['memebot_feed_reconnects_total']:.0f}",
                      flush=True)  # fmt: skip
        finally:
            node.send_signal(signal.SIGTERM)
            rc = node.wait(60)
            stop.set()
        errors = sum(1 for ln in Path(f"{d}/node.log").read_text().splitlines() if '"level": "error"' in ln)
    warm = 60 if samples[-1][0] > 120 else 0
    ts = np.array([t for t, _ in samples if t >= warm])
    rss = np.array([m["process_resident_memory_bytes"] for t, m in samples if t >= warm])
    slope = float(np.polyfit(ts, rss, 1)[0]) * 3600 if len(ts) >= 3 else float("nan")
    full = [(t, m["process_resident_memory_bytes"]) for t, m in samples if m["memebot_node_events_total"] >= DEDUPE]
    slope_full = float(np.polyfit(*zip(*full), 1)[0]) * 3600 if len(full) >= 3 else float("nan")
    last = samples[-1][1]
    rows = [
        ("duration", f"{samples[-1][0]:.0f} s"),
        ("notifications sent by the server", f"{box['sent']:,}"),
        ("events processed by the node", f"{last['memebot_node_events_total']:,.0f}"),
        ("connections dropped by the server", f"{box['drops']}"),
        ("feed reconnects (node)", f"{last['memebot_feed_reconnects_total']:.0f}"),
        (f"RSS at {warm} s / at the end", f"{rss[0] / 1e6:.1f} MB / {rss[-1] / 1e6:.1f} MB"),
        (f"RSS growth (least squares after {warm} s)", f"{slope / 1e6:+.1f} MB/hour"),
        (f"  after {DEDUPE:,} events (feed's filter full)", f"{slope_full / 1e6:+.1f} MB/hour"),
        ("error lines in the node's log", f"{errors}"),
        ("alerts sent (Slack receiver)", f"{len(Slack.got)}"),
        ("node exit code after SIGTERM", f"{rc}"),
    ]
    for k, v in rows:
        print(f"{k:<42}{v:>30}")
    for m in Slack.got[:10]:
        print("alert:", m["text"][:100])


if __name__ == "__main__":
    main()
