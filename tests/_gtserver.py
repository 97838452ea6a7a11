"""A local GeckoTerminal for tests and benchmarks: serves candles in the real OHLCV response shape with
`before_timestamp`/`limit` paging, plus one-shot or persistent faults by request number."""

import json, time, threading
import numpy as np, pandas as pd
from pytest_httpserver import HTTPServer
from werkzeug import Response
from memebot.data.sources import render_gt_ohlcv

NS = 1_000_000_000


def gt_series(shared, n=2500, symbol="BONK/USDT"):
    """`n` real 5m Binance candles (ts, open..volume) to serve as a pool's history."""
    df = pd.read_parquet(
        shared / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet", filters=[("symbol", "==", symbol)]
    )
    df = df.sort_values("date").head(n)
    return pd.DataFrame(
        {
            "ts": df["date"].dt.tz_convert("UTC"),
            "open": df.open,
            "high": df.high,
            "low": df.low,
            "close": df.close,
            "volume": df.volume,
        }
    ).reset_index(drop=True)


class GTServer:
    """Serve `series` at /networks/{net}/pools/{pool}/ohlcv/{unit}; `faults` maps a request number (1-based) to a
    fault."""

    def __init__(self, series, pool="POOL", network="solana", unit="minute", faults=None, delay=0.0, timeout_sleep=1.0):
        self.series, self.faults, self.delay, self.timeout_sleep = series, dict(faults or {}), delay, timeout_sleep
        self.ts_s = series["ts"].to_numpy("datetime64[ns]").astype("int64") // NS
        self.requests = 0
        self.lock = threading.Lock()
        self.path = f"/networks/{network}/pools/{pool}/ohlcv/{unit}"
        self.srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.srv.expect_request(self.path).respond_with_handler(self.handle)
        self.srv.start()

    @property
    def url(self):
        return self.srv.url_for("").rstrip("/")

    def page(self, before, limit):
        sel = np.flatnonzero(self.ts_s < before)[-limit:]
        return render_gt_ohlcv(self.series.iloc[sel])

    def handle(self, req):
        with self.lock:
            self.requests += 1
            n = self.requests
        if self.delay:
            time.sleep(self.delay)
        before, limit = int(req.args.get("before_timestamp", 2**40)), int(req.args.get("limit", 100))
        fault = self.faults.get(n) or self.faults.get("always")
        body = json.dumps(self.page(before, limit)).encode()
        if fault == "429":
            return Response(
                b'{"message": "Rate limit exceeded"}', 429, {"Retry-After": "0", "content-type": "application/json"}
            )
        if fault == "500":
            return Response(b"internal error", 500)
        if fault == "timeout":
            time.sleep(self.timeout_sleep)
            return Response(body, 200, {"content-type": "application/json"})
        if fault == "badjson":
            return Response(body[: len(body) // 2], 200, {"content-type": "application/json"})
        if fault == "truncated":

            def gen():
                yield body[: len(body) // 2]

            return Response(
                gen(),
                200,
                {"content-type": "application/json", "Content-Length": str(len(body))},
                direct_passthrough=True,
            )
        if fault == "missing":
            p = json.loads(body)
            p["data"]["attributes"].pop("ohlcv_list")
            return Response(json.dumps(p), 200, {"content-type": "application/json"})
        if fault == "dupbar":  # the page repeats a bar with other values, before the real one (wire order)
            p = json.loads(body)
            lst = p["data"]["attributes"]["ohlcv_list"]
            lst.insert(2, [lst[5][0], lst[5][1], lst[5][2] * 2, lst[5][3], lst[5][4], lst[5][5]])
            return Response(json.dumps(p), 200, {"content-type": "application/json"})
        if fault == "badrow":
            p = json.loads(body)
            p["data"]["attributes"]["ohlcv_list"][3] = p["data"]["attributes"]["ohlcv_list"][3][:5]
            return Response(json.dumps(p), 200, {"content-type": "application/json"})
        return Response(body, 200, {"content-type": "application/json"})

    def stop(self):
        self.srv.clear()
        self.srv.stop()
