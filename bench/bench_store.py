"""Store benchmark (issue 2): bulk ingest, one symbol's range query, whole universe into pandas — each beside a plain
pandas.read_parquet of the same data, in the same run. Usage: .venv/bin/python bench/bench_store.py [--repeat N]"""

import argparse, json, statistics, sys, tempfile, time
from pathlib import Path
import pandas as pd, pyarrow as pa, pyarrow.parquet as pq
from memebot.core import shared_dir
from memebot.data.store import Store, upsert, candles
from memebot.data.importers import read_file


def timeit(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    sh = shared_dir(required=True)
    f = sh / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet"
    table, df = read_file(f)
    arrow = pa.Table.from_pandas(
        df.assign(ts=df.ts.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")), preserve_index=False
    )
    n = arrow.num_rows
    res = {"rows": n}
    with tempfile.TemporaryDirectory() as d:
        ingest = []
        for i in range(a.repeat):
            st = Store(Path(d) / f"b{i}.duckdb")
            t = time.perf_counter()
            upsert(st, "candles", arrow)
            ingest.append(time.perf_counter() - t)
            if i < a.repeat - 1:
                st.close()
        res["ingest_s"] = statistics.median(ingest)
        res["ingest_rows_per_s"] = n / res["ingest_s"]
        t = time.perf_counter()
        r = upsert(st, "candles", arrow)
        res["reingest_s"] = time.perf_counter() - t
        assert r["new"] == 0 and r["replaced"] == n
        res["parquet_read_full_s"], peer = timeit(lambda: pd.read_parquet(f), a.repeat)
        res["parquet_rows_per_s"] = n / res["parquet_read_full_s"]
        candles(st, "BONK/USDT", tf="5m")  # warm
        res["query_one_symbol_ms"], one = timeit(lambda: candles(st, "BONK/USDT", tf="5m"), a.repeat * 5)
        res["query_one_symbol_ms"] *= 1000
        res["one_symbol_rows"] = len(one)
        res["parquet_one_symbol_ms"], peer1 = timeit(
            lambda: pd.read_parquet(f, filters=[("symbol", "==", "BONK/USDT")]), a.repeat * 5
        )
        res["parquet_one_symbol_ms"] *= 1000
        assert len(peer1) == len(one)
        res["universe_to_pandas_s"], allc = timeit(lambda: candles(st, tf="5m"), a.repeat)
        assert len(allc) == n == len(peer)
        st.close()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}, indent=1))
    print(f"\n| figure | memebot store | pandas.read_parquet | target |\n|---|---|---|---|")
    print(
        f"| bulk ingest, {n:,} rows | {res['ingest_rows_per_s'] / 1e6:.2f} M rows/s ({res['ingest_s'] * 1000:.0f} ms) |"
        f" read only: {res['parquet_rows_per_s'] / 1e6:.2f} M rows/s ({res['parquet_read_full_s'] * 1000:.0f} ms) | >="
        " 2 M rows/s |"
    )
    print(
        f"| re-ingest same rows (idempotent replace) | {n / res['reingest_s'] / 1e6:.2f} M rows/s"
        f" ({res['reingest_s'] * 1000:.0f} ms) | - | - |"
    )
    print(
        f"| one symbol full range ({res['one_symbol_rows']:,} rows) | {res['query_one_symbol_ms']:.1f} ms |"
        f" {res['parquet_one_symbol_ms']:.1f} ms (filters=) | < 20 ms |"
    )
    print(
        f"| whole universe into pandas | {res['universe_to_pandas_s'] * 1000:.0f} ms |"
        f" {res['parquet_read_full_s'] * 1000:.0f} ms | < 500 ms |"
    )


if __name__ == "__main__":
    sys.exit(main())
