"""Feeds benchmark (issue 4): decode+emit throughput per message kind beside its peer decoder (solders' Rust RPC parser,
web3.py's event decoder), p50/p99 latency websocket frame received -> event emitted (and server send -> emitted) on
loopback with the server in another process, bar aggregation, sync replay, and simulator speed.
Usage: .venv/bin/python bench/bench_feeds.py [--n N] [--json OUT]"""

import argparse, asyncio, base64, json, multiprocessing as mp, os, statistics, sys, time
import numpy as np
from memebot.core import shared_dir, NS, Swap, PoolUpdate, Chain, Side
from memebot.data import onchain as oc
from memebot.data.feeds import SolanaFeed, EvmFeed, BarAggregator, ReplayServer, renotify, whirlpool_account

MINT = "HDrQeAophZ2fT1vsowFDCSbbmRAo8P9ZaHZcCVphpump"
USER = "EsmVk4MTsoT71JFaRM5DWFZboKpMQjfY6EYzAgUuksXw"


def fx(*p):
    return json.loads((shared_dir(required=True) / "fixtures").joinpath(*p).read_text())


def trade_frame(note, sub, i, sig=None):
    t = oc.PumpTrade(MINT, 10**9 + i, 3 * 10**10 + i, i % 2 == 0, USER, 1_782_787_000 + i // 100, 0, 0, 0, 0)
    data = base64.b64encode(oc.encode_trade_event(t)).decode()
    v = dict(
        note["params"]["result"]["value"],
        signature=sig or f"s{i}",
        logs=["Program 6EF8 invoke [1]", "Program data: " + data, "Program 6EF8 success"],
    )
    return renotify(note, sub, context={"slot": 1000 + i}, value=v)


def frames(n):
    logs, acct = (
        fx("solana-rpc", "ws_logsNotification.json"),
        fx("solana-rpc", "ws_accountNotification_jsonParsed.json"),
    )
    orca = fx("orca", "account_whirlpool_Czfq3xZZ_SOL_USDC.solana-account.json")
    ev_logs = fx("evm", "eth_subscription_logs_notification.json")
    pepe = fx("evm", "recorded_uniswap_v2_sync_swap_logs_PEPE_WETH.THIRDPARTY.json")
    raw = base64.b64decode(orca["account"]["data"][0])
    f_trade = [trade_frame(logs, 1, i) for i in range(n)]
    f_acct = []
    for i in range(n):
        b = bytearray(raw)
        b[65:81] = (int.from_bytes(raw[65:81], "little") + i).to_bytes(16, "little")
        v = dict(acct["params"]["result"]["value"], data=[base64.b64encode(bytes(b)).decode(), "base64"])
        f_acct.append(renotify(acct, 1, context={"slot": 1000 + i}, value=v))
    f_sync = [renotify(ev_logs, "0xa", **dict(pepe[0], logIndex=hex(i), blockNumber=hex(10**6 + i))) for i in range(n)]
    return f_trade, f_acct, f_sync, orca, pepe


def rate(fn, n, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


async def handle_all(feed, fs):
    for f in fs:
        await feed.handle(f)


def decode_figures(n):
    f_trade, f_acct, f_sync, orca, pepe = frames(n)
    out = {}

    # memebot: full path (JSON parse, decode, dedupe/gate, event objects)
    def ours(kind):
        if kind == "trade":
            feed = SolanaFeed(log_mentions=["p"], url="ws://x", slots=False)
            feed._subs = {1: ("logs", "p")}
            fs = f_trade
        elif kind == "account":
            feed = SolanaFeed({orca["pubkey"]: whirlpool_account(orca["pubkey"], 9, 6)}, url="ws://x", slots=False)
            feed._subs = {1: ("account", orca["pubkey"])}
            fs = f_acct
        else:
            feed = EvmFeed([oc.V2Pair(pepe[0]["address"])], url="ws://x", heads=False)
            feed._subs = {"0xa": ("logs", None)}
            fs = f_sync

        def run():
            feed._seen.clear()
            feed._last_seq.clear()
            asyncio.run(handle_all(feed, fs))

        r = rate(run, len(fs))
        assert feed.stats["events"] >= len(fs), feed.stats
        return r

    for k in ("trade", "account", "sync"):
        out[f"memebot_{k}_msgs_per_s"] = ours(k)
    # peer 1: solders' Rust parser of the RPC envelope (typed objects; no pump.fun / pool decoding on top)
    from solders.rpc.responses import parse_websocket_message

    out["solders_parse_trade_msgs_per_s"] = rate(lambda: [parse_websocket_message(f) for f in f_trade], n)
    out["solders_parse_account_msgs_per_s"] = rate(lambda: [parse_websocket_message(f) for f in f_acct], n)
    # peer 2: web3.py's ABI event decoder for the Sync log (json.loads + process_log)
    from web3 import Web3

    abi = fx("evm", "uniswap_v2_pair_events_abi.DERIVED.json")
    abi = abi.get("abi", abi) if isinstance(abi, dict) else abi
    ev = Web3().eth.contract(abi=[a for a in abi if a.get("name") == "Sync"]).events.Sync()

    def web3_run():
        for f in f_sync:
            lg = json.loads(f)["params"]["result"]
            lg = {
                **lg,
                "topics": [bytes.fromhex(t[2:]) for t in lg["topics"]],
                "data": bytes.fromhex(lg["data"][2:]),
                "blockNumber": int(lg["blockNumber"], 16),
                "logIndex": int(lg["logIndex"], 16),
                "transactionIndex": int(lg["transactionIndex"], 16),
                "blockHash": bytes.fromhex(lg["blockHash"][2:]),
                "transactionHash": bytes.fromhex(lg["transactionHash"][2:]),
            }
            ev.process_log(lg)

    out["web3_sync_msgs_per_s"] = rate(web3_run, n, repeat=1)
    return out


# ---- loopback: server in another process
def _server(port_q, stop_ev, n, pace_us, burst):
    async def main():
        note = fx("solana-rpc", "ws_logsNotification.json")
        mark = "t" + "0" * 19
        pre = [trade_frame(note, "SUB", i, sig=f"b{i}" if burst else mark) for i in range(n)]  # built before timing

        async def script(srv, ws, subs):
            ((_, _, sid),) = subs
            fs = [f.replace('"SUB"', str(sid)) for f in pre]
            for f in fs:
                if burst:
                    await ws.send(f)
                else:
                    await ws.send(f.replace(mark, "t%019d" % time.perf_counter_ns()))
                    await asyncio.sleep(pace_us / 1e6)
            await ws.wait_closed()

        async with ReplayServer(script) as srv:
            port_q.put(srv.port)
            while not stop_ev.is_set():
                await asyncio.sleep(0.05)

    asyncio.run(main())


def loopback(n, pace_us=0, burst=False, raw=False):
    ctx = mp.get_context("spawn")
    q, stop = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=_server, args=(q, stop, n, pace_us, burst), daemon=True)
    p.start()
    port = q.get(timeout=60)
    lat_recv, lat_send = [], []

    async def raw_client():  # peer: the websockets library alone (recv + JSON parse), no decoding
        import orjson
        from websockets.asyncio.client import connect

        async with connect(f"ws://127.0.0.1:{port}", compression=None, ping_interval=None) as ws:
            await ws.send(
                json.dumps({"jsonrpc": "2.0", "id": 1, "method": "logsSubscribe", "params": [{"mentions": ["p"]}, {}]})
            )
            await ws.recv()
            k = 0
            t0 = None
            while k < n:
                orjson.loads(await ws.recv())
                k += 1
                if t0 is None:
                    t0 = time.perf_counter_ns()
            return k, (time.perf_counter_ns() - t0) / 1e9

    async def client():
        feed = SolanaFeed(log_mentions=["p"], url=f"ws://127.0.0.1:{port}", slots=False, heartbeat_timeout_s=10)
        k = 0
        t0 = None
        async for e in feed:
            now = time.perf_counter_ns()
            if t0 is None:
                t0 = now
            if not burst:
                lat_recv.append(now - feed.last_recv_ns)
                lat_send.append(now - int(e.sig[1:]))
            k += 1
            if k == n:
                break
        dt = (time.perf_counter_ns() - t0) / 1e9
        await feed.close()
        return k, dt

    k, dt = asyncio.run(raw_client() if raw else client())
    stop.set()
    p.join(5)
    if raw:
        return {"loopback_websockets_only_msgs_per_s": (k - 1) / dt}
    if burst:
        return {"loopback_msgs_per_s": (k - 1) / dt}
    a, b = np.array(lat_recv[100:]) / 1e3, np.array(lat_send[100:]) / 1e3  # skip warm-up
    return {
        "recv_to_emit_us_p50": float(np.percentile(a, 50)),
        "recv_to_emit_us_p99": float(np.percentile(a, 99)),
        "send_to_emit_us_p50": float(np.percentile(b, 50)),
        "send_to_emit_us_p99": float(np.percentile(b, 99)),
        "latency_msgs": len(a),
    }


def other_figures():
    out = {}
    rng = np.random.default_rng(0)
    n = 300_000
    evs = [
        Swap(int(i * 2e8), Chain.SOLANA, f"P{i % 5}", Side.BUY, 1.0, float(p), sig=str(i))
        for i, p in enumerate(1 + rng.random(n))
    ]

    def agg():
        a = BarAggregator(("1s", "1m", "5m"))
        for e in evs:
            a.on_event(e)

    out["bars_events_per_s"] = rate(agg, n, repeat=2)
    from memebot.data.sim import MarketSim
    from memebot.data.store import Store
    from memebot.data.replay import ReplayFeed

    t = time.perf_counter()
    evs = list(MarketSim(seed=1, minutes=240, launches=20))
    dt = time.perf_counter() - t
    sw = sum(isinstance(e, Swap) for e in evs)
    out["sim_swaps_per_s"] = sw / dt
    out["sim_swaps"] = sw
    st = Store(":memory:")
    t = time.perf_counter()
    r = MarketSim(seed=1, minutes=240, launches=20).write(st, tfs=("1s", "1m", "5m"))
    dt = time.perf_counter() - t
    out["sim_write_swaps_per_s"] = r["swaps"] / dt
    out["sim_write_s"] = dt
    out["sim_candles"] = r["candles"]
    out["replay_candles_per_s"] = rate(
        lambda: sum(1 for _ in ReplayFeed(st, tf="1s")),
        st.con.execute("SELECT count(*) FROM candles WHERE tf='1s'").fetchone()[0],
    )
    out["replay_swaps_per_s"] = rate(lambda: sum(1 for _ in ReplayFeed(st, kind="swaps")), r["swaps"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--json")
    a = ap.parse_args()
    res = {"cpu": os.cpu_count()}
    res.update(decode_figures(a.n))
    res.update(loopback(a.n, burst=True))
    res.update(loopback(a.n, burst=True, raw=True))
    res.update(loopback(5_000, pace_us=200))
    res.update(other_figures())
    for k, v in res.items():
        print(f"{k:36s} {v:,.1f}" if isinstance(v, float) else f"{k:36s} {v}")
    if a.json:
        open(a.json, "w").write(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
