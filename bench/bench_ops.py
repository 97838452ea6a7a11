"""Operations benchmarks (issue 9): quickstart wall time (up to the paper step), and the sweep speed-up with the
Dask task runner on 2 worker processes against 1, beside the plain in-process vectorbt sweep.

    PYTHONPATH=. .venv/bin/python bench/bench_ops.py [--skip-quickstart] [--skip-sweep] [--json OUT]

Sweep: EMA cross over ../shared/data/binance_memecoins 5m BONK/USDT (34,560 bars), a 40 x 50 grid (2,000 combinations),
fees 10 bps,
    split into 8 chunks by `memebot.ops.split_grid`; each Dask worker is warmed (vectorbt's numba compile) before
timing, and one small Prefect flow run warms the workers' Prefect clients; the cluster start is reported separately.
Also measured: the same chunks through plain Dask (`client.map`, no Prefect),
    to separate Dask's and Prefect's overheads.
"""

import argparse, json, os, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "flows"))
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="memebot-bench-prefect-"))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
from memebot.ops import prefect_env

prefect_env()


def bench_quickstart():
    from memebot.ops import quickstart

    d = Path(tempfile.mkdtemp(prefix="memebot-bench-qs-")) / "qs"
    t0 = time.perf_counter()
    r = quickstart(d, paper=False, progress=False)
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "stages_s": r.seconds,
        "bars_backtested": r.backtest["bars"],
        "swaps": r.sim["swaps"],
        "champion": r.champion,
    }


def _warm():
    import pandas as pd, numpy as np
    from memebot.backtest.vector import sweep

    idx = pd.date_range("2025-01-01", periods=300, freq="5min", tz="UTC")
    c = pd.DataFrame({"X": np.linspace(1, 2, 300) + np.sin(np.arange(300) / 5) * 0.1}, index=idx)
    fr = pd.concat({"open": c, "high": c * 1.01, "low": c * 0.99, "close": c, "volume": c * 0 + 1}, axis=1)
    sweep("ema_cross", fr, {"fast": [3], "slow": [10]})
    return True


def bench_sweep(chunks=8):
    import pandas as pd
    from distributed import LocalCluster, Client
    from memebot.core import shared_dir
    from memebot.backtest import CandleFeed
    from memebot.backtest.vector import sweep
    from memebot import ops
    from sweep import sweep_flow

    df = pd.read_parquet(
        shared_dir() / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet",
        filters=[("symbol", "==", "BONK/USDT")],
    )
    df = df.rename(columns={"date": "ts"})
    frame = CandleFeed.from_frame(df, "5m").frame()
    grid = {"fast": list(range(2, 42)), "slow": list(range(105, 305, 4))}
    _warm()
    t0 = time.perf_counter()
    ref = sweep("ema_cross", frame, grid, fees_bps=10.0)
    plain = time.perf_counter() - t0
    out = {"bars": len(frame), "combinations": len(ref), "chunks": chunks, "plain_s": plain}
    for n in (1, 2):
        t0 = time.perf_counter()
        with (
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cl,
            Client(cl) as c,
        ):
            start = time.perf_counter() - t0
            c.run(_warm)
            parts = ops.split_grid(grid, chunks)
            fr = c.scatter(frame, broadcast=True)
            c.gather(
                c.map(ops.sweep_chunk, ["ema_cross"] * n, [fr] * n, parts[:n], fees_bps=10.0, pure=False)
            )  # second warm-up
            t0 = time.perf_counter()
            plain_parts = c.gather(
                c.map(ops.sweep_chunk, ["ema_cross"] * len(parts), [fr] * len(parts), parts, fees_bps=10.0, pure=False)
            )
            out[f"dask_only_{n}_s"] = time.perf_counter() - t0
            assert sum(map(len, plain_parts)) == len(ref)
            run = sweep_flow.with_options(task_runner=ops.task_runner("dask", address=cl.scheduler_address))
            run(
                "ema_cross", {"fast": [3, 4], "slow": [10]}, frame=frame, chunks=n, fees_bps=10.0
            )  # warm: workers' Prefect client
            t0 = time.perf_counter()
            res = sweep_flow.with_options(task_runner=ops.task_runner("dask", address=cl.scheduler_address))(
                "ema_cross", grid, frame=frame, chunks=chunks, fees_bps=10.0
            )
            dt = time.perf_counter() - t0
        assert len(res) == len(ref)
        out[f"dask_{n}_s"] = dt
        out[f"dask_{n}_cluster_start_s"] = start
    out["speedup_2_vs_1"] = out["dask_1_s"] / out["dask_2_s"]
    out["dask_only_speedup_2_vs_1"] = out["dask_only_1_s"] / out["dask_only_2_s"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-quickstart", action="store_true")
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    out = {"cpus": os.cpu_count()}
    if not a.skip_quickstart:
        q = out["quickstart"] = bench_quickstart()
        print(
            f"quickstart (no paper step): {q['wall_s']:.1f} s wall; stages: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in q["stages_s"].items())
        )
    if not a.skip_sweep:
        s = out["sweep"] = bench_sweep(a.chunks)
        print(
            f"sweep {s['combinations']:,} combinations x {s['bars']:,} bars in {s['chunks']} chunks: plain in-process"
            f" {s['plain_s']:.1f} s; Prefect + Dask 1 worker {s['dask_1_s']:.1f} s, 2 workers {s['dask_2_s']:.1f} s ->"
            f" speed-up {s['speedup_2_vs_1']:.2f}x (cluster start {s['dask_1_cluster_start_s']:.1f} /"
            f" {s['dask_2_cluster_start_s']:.1f} s, not included); plain Dask (client.map, no Prefect) 1 worker"
            f" {s['dask_only_1_s']:.1f} s, 2 workers {s['dask_only_2_s']:.1f} s -> {s['dask_only_speedup_2_vs_1']:.2f}x"
        )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
