"""Live feeds against a local websocket server on 127.0.0.1 replaying recorded Solana RPC / eth_subscribe messages,
with fault injection (drops, duplicates, out-of-order, malformed, silence, refused reconnects, slot gaps)."""

import asyncio, base64, json, random, hashlib
from solders.pubkey import Pubkey
import numpy as np, pandas as pd, pytest
from memebot.core import NS, Chain, Side, Swap, PoolUpdate, Candle, TokenLaunched
from memebot.data import onchain as oc
from memebot.data.feeds import (
    SolanaFeed,
    EvmFeed,
    ReplayServer,
    renotify,
    BarAggregator,
    Backfill,
    FeedError,
    whirlpool_account,
    bonding_curve_account,
    JupiterPriceFeed,
    open_feed,
)

MINT = "HDrQeAophZ2fT1vsowFDCSbbmRAo8P9ZaHZcCVphpump"


def _fx(shared, *p):
    return json.loads((shared / "fixtures").joinpath(*p).read_text())


@pytest.fixture(scope="module")
def timeline(shared):
    """Real pump.fun swaps of one launch as logsNotification messages (one per transaction), and their true 1s bars."""
    df = pd.read_parquet(shared / "data/pumpfun/swaps_first_300s.parquet")
    df = df[(df.mint == MINT) & (df.sol > 0) & (df.tokens > 0)].reset_index(drop=True)
    df["sig"] = df.sig.fillna(pd.Series([f"nosig{i}" for i in range(len(df))]))  # most rows carry no signature
    df["trader"] = [
        t if isinstance(t, str) and len(t) >= 32 else str(Pubkey(hashlib.sha256(str(t).encode()).digest()))
        for t in df.trader
    ]
    # the launch's 300 s played twice (the second copy 400 s later, new signatures): ~1000 transactions
    df = pd.concat([df, df.assign(ts=df.ts + 400, sig=df.sig + "/2")], ignore_index=True)
    df["lamports"] = (df.sol * 1e9).round().astype("int64")
    df["atoms"] = (df.tokens * 1e6).round().astype("int64")
    df = df.sort_values(["ts", "sig"], kind="stable").reset_index(drop=True)
    df["ix"] = df.groupby("sig").cumcount()
    note = _fx(shared, "solana-rpc", "ws_logsNotification.json")
    t0 = int(df.ts.min())
    msgs = []
    for sig, g in df.groupby("sig", sort=False):
        lines = ["Program 6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P invoke [1]"]
        for r in g.itertuples():
            t = oc.PumpTrade(MINT, int(r.lamports), int(r.atoms), r.side == "buy", r.trader, int(r.ts), 0, 0, 0, 0)
            lines.append("Program data: " + base64.b64encode(oc.encode_trade_event(t)).decode())
        lines.append("Program 6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P success")
        slot = 400_000_000 + int((g.ts.iloc[0] - t0) * 2.5)
        msgs.append(
            (
                int(g.ts.iloc[0]),
                slot,
                note,
                {"context": {"slot": slot}, "value": {"signature": sig, "err": None, "logs": lines}},
            )
        )
    # true bars, computed independently with pandas from the same integer amounts
    q = df.lamports / 1e9
    b = df.atoms / 10**6
    bars = (
        pd.DataFrame({"ts": df.ts * NS, "price": q / b, "vol": q})
        .groupby("ts", sort=True)
        .agg(
            open=("price", "first"),
            high=("price", "max"),
            low=("price", "min"),
            close=("price", "last"),
            volume=("vol", "sum"),
        )
    )
    return msgs, bars


def _truth_filled(bars):
    idx = np.arange(bars.index.min(), bars.index.max() + NS, NS)
    t = bars.reindex(idx)
    t["close"] = t["close"].ffill()
    for c in ("open", "high", "low"):
        t[c] = t[c].fillna(t["close"])
    return t.fillna({"volume": 0.0})


async def test_fault_injection_bars_have_no_gaps_or_duplicates(shared, timeline):
    msgs, truth = timeline
    curve = oc.bonding_curve_address(MINT)
    truth_bars = {
        int(ts): Candle(int(ts), r.open, r.high, r.low, r.close, r.volume, curve, "1s", "history")
        for ts, r in truth.iterrows()
    }
    filler_calls = []

    async def gap_filler(symbol, start, end):  # a history source serving real candles
        filler_calls.append((symbol, start, end))
        assert symbol == curve
        if len(filler_calls) == 3:
            raise ConnectionError("history source down")  # a failing filler must not crash
        return [c for t, c in truth_bars.items() if start <= t < end]

    rng = random.Random(4)
    slot_note = _fx(shared, "solana-rpc", "ws_slotNotification.json")
    n = len(msgs)
    tail = 40
    faults = dict(drops=0, silences=0, refusals=0, dups=0, swapped=0, malformed=0, slot_gaps=0, lost=0)

    async def script(srv, ws, subs):
        sid = {m: s for m, _, s in subs}
        burst = rng.randint(1, 8)
        sent = 0
        while srv.i < n:
            ts, slot, note, result = msgs[srv.i]
            faulty = srv.i < n - tail
            if faulty and rng.random() < 0.08 and srv.i + 1 < n and msgs[srv.i + 1][0] - ts <= 1:  # out of order
                nts, nslot, nnote, nres = msgs[srv.i + 1]
                await ws.send(renotify(nnote, sid["logsSubscribe"], **nres))
                await ws.send(renotify(note, sid["logsSubscribe"], **result))
                srv.i += 2
                faults["swapped"] += 1
                sent += 2
            else:
                await ws.send(renotify(note, sid["logsSubscribe"], **result))
                srv.i += 1
                sent += 1
            slot += srv.slot_off
            if rng.random() < 0.3:
                await ws.send(renotify(slot_note, sid["slotSubscribe"], slot=slot, parent=slot - 1, root=slot - 32))
            if not faulty:
                continue
            r = rng.random()
            if r < 0.05:
                await ws.send(renotify(note, sid["logsSubscribe"], **result))
                faults["dups"] += 1
            elif r < 0.10:
                bad = rng.choice(
                    [
                        "{not json",
                        json.dumps({"jsonrpc": "2.0", "method": "logsNotification", "params": {}}),
                        renotify(note, 999_999, **result),
                        renotify(
                            note,
                            sid["logsSubscribe"],
                            **dict(result, value=dict(result["value"], logs=["Program data: %%%"])),
                        ),
                    ]
                )
                await ws.send(bad)
                faults["malformed"] += 1
            elif r < 0.12 and srv.i + 3 < n - tail:  # silently skip messages; the slot jump reveals it
                srv.i += rng.randint(1, 3)
                faults["slot_gaps"] += 1
                srv.slot_off += 500  # the node skipped ahead
                s2 = msgs[srv.i][1] + srv.slot_off
                await ws.send(renotify(slot_note, sid["slotSubscribe"], slot=s2, parent=s2 - 1, root=s2 - 32))
            if sent >= burst:
                k = rng.random()
                if k < 0.06:
                    faults["silences"] += 1
                    await asyncio.sleep(0.15)
                    return  # heartbeat timeout on the client
                if k < 0.15:
                    srv.refuse = rng.randint(1, 4)
                    faults["refusals"] += 1
                lost = rng.randint(0, 3)
                srv.i = min(srv.i + lost, n - tail)
                faults["lost"] += lost
                faults["drops"] += 1
                ws.transport.abort()
                return
        # end of the recording: a sentinel trade 5 s after the last, then stay open
        t = oc.PumpTrade(MINT, 1, 1, True, MINT, msgs[-1][0] + 5, 0, 0, 0, 0)
        await ws.send(
            renotify(
                msgs[0][2],
                sid["logsSubscribe"],
                context={"slot": 1},
                value={
                    "signature": "sentinel",
                    "err": None,
                    "logs": ["Program data: " + base64.b64encode(oc.encode_trade_event(t)).decode()],
                },
            )
        )
        await asyncio.sleep(30)

    agg = BarAggregator(("1s", "1m"), lateness_s=2)
    bars = []
    async with ReplayServer(script, expect=2) as srv:
        srv.i = srv.slot_off = 0
        feed = SolanaFeed(
            log_mentions=[oc.PROGRAMS["pumpfun"]],
            url=srv.url,
            gap_filler=gap_filler,
            gap_tf="1s",
            lateness_s=2,
            heartbeat_timeout_s=0.05,
            reconnect_initial_s=0.001,
            reconnect_max_s=0.01,
        )

        async def consume():
            async for ev in feed:
                bars.extend(agg.on_event(ev))
                if isinstance(ev, Swap) and ev.sig == "sentinel":
                    return

        await asyncio.wait_for(consume(), 120)
        await feed.close()
    st = feed.stats
    assert faults["drops"] >= 100 and st["drops"] >= 100, (faults, st)
    assert st["heartbeat_timeouts"] >= 1 and faults["refusals"] >= 1 and st["duplicates"] >= faults["dups"] > 0
    assert st["malformed"] >= faults["malformed"] > 0 and st["backfills"] >= 3 and st["backfill_errors"] == 1
    assert feed.missed_slots > 0 and faults["lost"] > 0 and srv.connections > faults["drops"]
    s1 = [b for b in bars if b.tf == "1s" and b.ts <= truth.index.max()]
    ts = np.array([b.ts for b in s1])
    assert len(ts) == len(set(ts)), "duplicate bars"
    assert (np.diff(ts) == NS).all(), "holes in the bar series"
    exp = _truth_filled(truth)
    assert ts[0] == exp.index[0] and ts[-1] == exp.index[-1]
    got = pd.DataFrame(
        [(b.open, b.high, b.low, b.close, b.volume) for b in s1],
        columns=["open", "high", "low", "close", "volume"],
        index=ts,
    )
    # a failed back-fill leaves that interval's bars to live data: compare only bars outside failed fills
    failed = filler_calls[2:3]
    ok = np.ones(len(got), bool)
    for _, a, b_ in failed:
        ok &= ~((got.index >= a) & (got.index < b_))
    assert ok.sum() > 0.9 * len(ok)
    for c in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(got[c].to_numpy()[ok], exp[c].to_numpy()[ok], err_msg=c)
    np.testing.assert_allclose(got["volume"].to_numpy()[ok], exp["volume"].to_numpy()[ok], rtol=1e-9)
    m1 = [b for b in bars if b.tf == "1m"]
    assert len({b.ts for b in m1}) == len(m1) and all(np.diff([b.ts for b in m1]) == 60 * NS)


async def test_account_ticks_survive_reconnect_and_resubscribe(shared):
    orca = _fx(shared, "orca", "account_whirlpool_Czfq3xZZ_SOL_USDC.solana-account.json")
    note = _fx(shared, "solana-rpc", "ws_accountNotification_jsonParsed.json")
    raw = base64.b64decode(orca["account"]["data"][0])
    pool = orca["pubkey"]

    def at_slot(slot, sqrt):  # the real account with a moved sqrt_price
        b = bytearray(raw)
        b[65:81] = sqrt.to_bytes(16, "little")
        return {
            "context": {"slot": slot},
            "value": dict(note["params"]["result"]["value"], data=[base64.b64encode(bytes(b)).decode(), "base64"]),
        }

    sqrt0 = int.from_bytes(raw[65:81], "little")

    async def script(srv, ws, subs):
        ((m, params, sid),) = subs
        assert m == "accountSubscribe" and params[0] == pool and params[1]["encoding"] == "base64"
        k = srv.connections
        for j in range(3):
            s = 100 * k + j
            await ws.send(renotify(note, sid, **at_slot(s, sqrt0 + s * 10**12)))
        await ws.send(renotify(note, sid, **at_slot(100 * k - 50, sqrt0)))  # stale (older slot): dropped
        ws.transport.abort()

    async with ReplayServer(script) as srv:
        feed = SolanaFeed(
            {pool: whirlpool_account(pool, 9, 6)},
            slots=False,
            url=srv.url,
            heartbeat_timeout_s=1,
            reconnect_initial_s=0.001,
            reconnect_max_s=0.005,
        )
        got = []
        async for ev in feed:
            got.append(ev)
            if len(got) == 12:
                break
        await feed.close()
    assert [e.slot for e in got] == [100 * k + j for k in range(1, 5) for j in range(3)]
    assert all(152.0 < e.price < 152.3 for e in got) and feed.stats["stale"] >= 3 and srv.connections >= 4
    assert got[-1].price > got[0].price  # sqrt_price rose


async def test_pumpfun_create_is_token_launched_and_failed_tx_ignored(shared):
    note = _fx(shared, "solana-rpc", "ws_logsNotification.json")
    user = "EsmVk4MTsoT71JFaRM5DWFZboKpMQjfY6EYzAgUuksXw"
    create = base64.b64encode(
        oc.encode_create_event("Moon", "MOON", "ipfs://m", MINT, user, user, 1_782_787_000)
    ).decode()
    trade = base64.b64encode(
        oc.encode_trade_event(oc.PumpTrade(MINT, 10**9, 3 * 10**10, True, user, 1_782_787_001, 0, 0, 0, 0))
    ).decode()

    async def script(srv, ws, subs):
        ((_, _, sid),) = subs
        v = note["params"]["result"]["value"]
        await ws.send(
            renotify(
                note,
                sid,
                value=dict(
                    v, err={"InstructionError": [0, "Custom"]}, logs=["Program data: " + trade], signature="failed"
                ),
            )
        )
        await ws.send(
            renotify(note, sid, value=dict(v, logs=v["logs"] + ["Program data: " + create, "Program data: " + trade]))
        )
        await ws.wait_closed()

    async with ReplayServer(script) as srv:
        feed = open_feed("solana", ["pumpfun"], url=srv.url, slots=False, heartbeat_timeout_s=1)
        got = []
        async for ev in feed:
            got.append(ev)
            if len(got) == 2:
                break
        await feed.close()
    launch, swap = got
    assert (
        isinstance(launch, TokenLaunched)
        and launch.mint == MINT
        and launch.symbol == "MOON"
        and launch.pool == oc.bonding_curve_address(MINT)
    )
    assert (
        isinstance(swap, Swap)
        and swap.sig == note["params"]["result"]["value"]["signature"]
        and swap.base_amount == 30_000.0
    )
    assert swap.price == 1 / 30_000


async def test_evm_feed_real_logs_gaps_and_reorgs(shared):
    logs_note = _fx(shared, "evm", "eth_subscription_logs_notification.json")
    head_note = _fx(shared, "evm", "eth_subscription_newHeads_notification.json")
    pepe = _fx(shared, "evm", "recorded_uniswap_v2_sync_swap_logs_PEPE_WETH.THIRDPARTY.json")
    want = _fx(shared, "evm", "recorded_uniswap_v2_sync_swap_logs_PEPE_WETH.DECODED.json")
    req = _fx(shared, "evm", "eth_subscribe_logs_request.json")
    blk = int(pepe[0]["blockNumber"], 16)

    async def script(srv, ws, subs):
        (m1, p1, logs_id), (m2, p2, heads_id) = subs
        assert (
            p1[0] == "logs" and p1[1]["address"] == [pepe[0]["address"]] and p2 == ["newHeads"] and m1 == req["method"]
        )
        await ws.send(renotify(head_note, heads_id, number=hex(blk - 5)))
        await ws.send(renotify(head_note, heads_id, number=hex(blk), timestamp="0x64000000"))  # 4 blocks missed
        await ws.send(renotify(logs_note, logs_id, **dict(pepe[1], removed=True)))  # reorged: dropped
        await ws.send(renotify(logs_note, logs_id, **dict(pepe[0], data="0x1234")))  # malformed
        for lg in pepe:
            await ws.send(renotify(logs_note, logs_id, **lg))
        await ws.send(renotify(logs_note, logs_id, **pepe[1]))  # duplicate
        await ws.wait_closed()

    async with ReplayServer(script, expect=2) as srv:
        feed = EvmFeed([oc.V2Pair(pepe[0]["address"])], url=srv.url, heartbeat_timeout_s=0.5)
        got = []
        async for ev in feed:
            got.append(ev)
            if len(got) == 2:
                break
        await feed.close()
    up, sw = got
    assert (
        up.ts == sw.ts == 0x64000000 * NS
        and feed.stats["gaps"] == 1
        and feed.removed == 1
        and feed.stats["malformed"] == 1
    )
    assert (
        up.base_reserve == int(want["Sync"]["reserve0"]) / 1e18
        and up.quote_reserve == int(want["Sync"]["reserve1"]) / 1e18
    )
    assert (
        sw.base_amount == int(want["Swap"]["amount0Out"]) / 1e18
        and sw.side is Side.BUY
        and sw.trader == want["Swap"]["to"]
    )


async def test_refused_forever_is_a_feed_error():
    async def script(srv, ws, subs):
        pass

    async with ReplayServer(script) as srv:
        srv.refuse = 10**6
        feed = SolanaFeed(
            log_mentions=["x"], url=srv.url, reconnect_initial_s=0.001, reconnect_max_s=0.002, max_attempts=5
        )
        with pytest.raises(FeedError, match="cannot connect"):
            async for _ in feed:
                pass


def test_jupiter_price_poller(shared, httpserver):
    body = _fx(shared, "jupiter", "price_v3_response_guide.json")
    err = _fx(shared, "jupiter", "price_v3_error_429.json")
    mints = list(body)
    httpserver.expect_ordered_request("/price/v3").respond_with_json(err, status=429, headers={"Retry-After": "0.2"})
    httpserver.expect_ordered_request("/price/v3", query_string={"ids": ",".join(mints)}).respond_with_json(body)
    httpserver.expect_ordered_request("/price/v3").respond_with_json(body)  # unchanged: no ticks
    moved = {k: dict(v, usdPrice=v["usdPrice"] * 1.01, blockId=v["blockId"] + 1) for k, v in body.items()}
    httpserver.expect_ordered_request("/price/v3").respond_with_json(moved)

    async def run():
        from memebot.core import SimClock

        f = JupiterPriceFeed(
            mints, poll_s=5, url=httpserver.url_for("").rstrip("/"), clock=SimClock(10**18), max_polls=3
        )
        return [t async for t in f], f

    ticks, f = asyncio.run(run())
    assert f.stats["retries"] == 1 and f.stats["retry_wait_s"] >= 0.2  # the 429's Retry-After set the wait
    assert [(t.symbol, t.price) for t in ticks] == (
        [(m, body[m]["usdPrice"]) for m in mints] + [(m, moved[m]["usdPrice"]) for m in mints]
    )  # the unchanged poll: none
    assert f.stats["errors"] == 1 and ticks[-1].ts == 10**18 + 10 * NS


async def test_ccxt_pro_ohlcv_from_a_local_binance_stream():
    """ccxt.pro's own binance client against a local server speaking Binance's kline stream format (payload fields as in
    Binance's "K-line streams" docs sample); CcxtFeed emits each candle once it is closed (a newer one appeared)."""
    import ccxt.pro as cp
    from websockets.asyncio.server import serve
    from memebot.data.feeds import CcxtFeed

    subs = []

    def kline(t, o, h, l, c, closed):
        return json.dumps(
            {
                "e": "kline",
                "E": t + 1000,
                "s": "SOLUSDT",
                "k": {
                    "t": t,
                    "T": t + 59_999,
                    "s": "SOLUSDT",
                    "i": "1m",
                    "f": 100,
                    "L": 200,
                    "o": str(o),
                    "c": str(c),
                    "h": str(h),
                    "l": str(l),
                    "v": "1000",
                    "n": 100,
                    "x": closed,
                    "q": "1.0000",
                    "V": "500",
                    "Q": "0.500",
                    "B": "0",
                },
            }
        )

    t0 = 1_700_000_040_000

    async def handler(ws):
        async for raw in ws:
            req = json.loads(raw)
            subs.append(req)
            await ws.send(json.dumps({"result": None, "id": req["id"]}))
            for m in (
                kline(t0, 100, 101, 99, 100.5, False),
                kline(t0, 100, 102, 99, 101, True),  # bar 0 updated, then closed
                kline(t0 + 60_000, 101, 103, 100, 102, True),
                kline(t0 + 120_000, 102, 104, 101, 103, False),
                kline(t0 + 180_000, 103, 103, 103, 103, False),
            ):
                await ws.send(m)
                await asyncio.sleep(0.01)

    async with serve(handler, "127.0.0.1", 0) as srv:
        ex = cp.binance()
        ex.urls["api"]["ws"]["spot"] = f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}/ws"
        ex.set_markets(
            [
                {
                    "id": "SOLUSDT",
                    "lowercaseId": "solusdt",
                    "symbol": "SOL/USDT",
                    "base": "SOL",
                    "quote": "USDT",
                    "baseId": "SOL",
                    "quoteId": "USDT",
                    "type": "spot",
                    "spot": True,
                    "margin": False,
                    "swap": False,
                    "future": False,
                    "option": False,
                    "contract": False,
                    "active": True,
                    "linear": None,
                    "inverse": None,
                    "precision": {"amount": 0.001, "price": 0.01},
                    "limits": {},
                    "info": {},
                }
            ]
        )
        feed = CcxtFeed(["SOL/USDT"], exchange=ex, kind="ohlcv", tf="1m")
        got = []

        async def consume():
            async for c in feed:
                got.append(c)
                if len(got) == 3:
                    return

        await asyncio.wait_for(consume(), 20)
        await feed.close()
    assert subs[0]["method"] == "SUBSCRIBE" and subs[0]["params"] == ["solusdt@kline_1m"]
    assert [(c.ts, c.open, c.high, c.low, c.close) for c in got] == [
        (t0 * 10**6, 100, 102, 99, 101),
        ((t0 + 60_000) * 10**6, 101, 103, 100, 102),
        ((t0 + 120_000) * 10**6, 102, 104, 101, 103),
    ]
    assert all(c.chain is Chain.CEX and c.source == "ccxt:binance" and c.tf == "1m" for c in got)
