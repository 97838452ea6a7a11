"""ML benchmark (issue 8): single-prediction latency of a served champion (gradient boosting and LSTM) through
memebot's Predictor beside MLflow's own pyfunc predict on a 1-row DataFrame (the peer), and training time per model
family on the 25-symbol 5m Binance data, on CPU.

Usage: .venv/bin/python bench/bench_ml.py [--threads 1] [--deep-steps 150] [--calls 3000] [--json bench/out/ml.json]

Deep families (LSTM, Transformer, CNN) train for --deep-steps minibatches of 512 windows; the time for one full
epoch over the training rows is extrapolated from the measured seconds per step (stated as such in the output).
"""

import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
import numpy as np, pandas as pd


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000, q))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--deep-steps", type=int, default=150)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--json", default="bench/out/ml.json")
    ap.add_argument("--symbols", type=int, default=0, help="limit to the first N memecoins (0 = all)")
    ap.add_argument(
        "--latency-only", action="store_true", help="train only the GBM and LSTM champions, then measure latency"
    )
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from memebot.core import shared_dir
    from memebot.features import make_dataset, CONTEXT_SYMBOLS
    from memebot.models.base import make_model

    sh = shared_dir(required=True)
    raw = pd.read_parquet(sh / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet").rename(columns={"date": "ts"})
    if a.symbols:
        keep = [s for s in sorted(raw.symbol.unique()) if s not in CONTEXT_SYMBOLS][: a.symbols] + list(CONTEXT_SYMBOLS)
        raw = raw[raw.symbol.isin(keep)]
    res = {"rows_candles": len(raw), "symbols": int(raw.symbol.nunique()), "threads": a.threads, "cpu": os.cpu_count()}
    t = time.perf_counter()
    ds = make_dataset(raw, h=1, fee_bps=10)
    res["features_s"] = time.perf_counter() - t
    res["rows_dataset"] = len(ds.X)
    res["n_features"] = ds.X.shape[1]
    u = np.sort(ds.times.unique())
    cut = u[int(len(u) * 0.8)]
    tr, te = ds.subset(ds.times < cut), ds.subset(ds.times >= cut)
    n_lab = int(tr.y.notna().sum())
    res["train_rows"] = len(tr.X)
    res["train_labelled"] = n_lab
    print(
        f"features for {res['rows_candles']:,} candles ({res['symbols']} symbols): {res['features_s']:.1f} s; train"
        f" rows {len(tr.X):,} ({n_lab:,} labelled)",
        flush=True,
    )

    # --- training time per family --------------------------------------------------------------------------
    train = {}
    full = {
        "persistence": {},
        "momentum": {},
        "majority": {},
        "logreg": {},
        "gbm": {},
        "ensemble": {"members": ["logreg", "gbm", "momentum"]},
    }
    models = {}
    if a.latency_only:
        full = {"gbm": {}}
    for fam, p in full.items():
        t = time.perf_counter()
        m = make_model(fam, **p).fit(tr.X, tr.y)
        dt = time.perf_counter() - t
        train[fam] = {"seconds": dt, "measured_on": "full training set", "extrapolated": False}
        models[fam] = m
        print(f"train {fam:12s} {dt:8.1f} s (full)", flush=True)
    bs = 512
    for fam in ("lstm",) if a.latency_only else ("lstm", "transformer", "cnn"):
        m = make_model(fam, max_steps=a.deep_steps, batch_size=bs, epochs=1, threads=a.threads)
        t = time.perf_counter()
        m.fit(tr.X, tr.y)
        dt = time.perf_counter() - t
        steps = m.steps_
        per_step = dt / max(1, steps)
        epoch_steps = int(np.ceil(n_lab / bs))
        train[fam] = {
            "seconds_measured": dt,
            "steps": steps,
            "s_per_step": per_step,
            "epoch_steps": epoch_steps,
            "seconds": per_step * epoch_steps,
            "measured_on": f"{steps} steps x {bs} windows",
            "extrapolated": True,
        }
        models[fam] = m
        print(
            f"train {fam:12s} {dt:8.1f} s for {steps} steps -> {per_step * 1000:.0f} ms/step -> 1 epoch ({epoch_steps}"
            f" steps) ~ {per_step * epoch_steps / 60:.1f} min (extrapolated)",
            flush=True,
        )
    res["train"] = train

    # --- single-prediction latency of the served champion ----------------------------------------------------
    from memebot.models.registry import log_and_register, promote, load_registered
    from memebot.models.serving import Predictor
    import mlflow

    lat = {}
    with tempfile.TemporaryDirectory() as d:
        uri = f"sqlite:///{d}/mlflow.db"
        sym = te.X.index.get_level_values("symbol")[0]
        H = te.X.loc[sym]
        A = H.to_numpy(np.float32)
        for fam in ("gbm", "lstm"):
            v = log_and_register(
                models[fam], f"bench-{fam}", uri, {"family": fam}, ds.fingerprint, reference_X=tr.X.iloc[:20000]
            )
            promote(f"bench-{fam}", v, uri)
            pr = Predictor(f"bench-{fam}", uri, refresh_s=30.0, shadow=False)
            W = pr.model.window
            n = min(a.calls, len(A) - W - 1)
            for i in range(50):
                pr.predict(sym, A[i : i + W])  # warm-up
            xs = []
            for i in range(n):
                t = time.perf_counter()
                pr.predict(sym, A[i : i + W])
                xs.append(time.perf_counter() - t)
            # the peer: MLflow's pyfunc predict on a 1-row (GBM) / window (LSTM) DataFrame
            pf = mlflow.pyfunc.load_model(f"models:/bench-{fam}@champion")
            ys = []
            for i in range(min(n, 500)):
                df = H.iloc[i : i + W]
                t = time.perf_counter()
                pf.predict(df)
                ys.append(time.perf_counter() - t)
            lat[fam] = {
                "predictor_p50_ms": pct(xs, 50),
                "predictor_p99_ms": pct(xs, 99),
                "calls": n,
                "window": W,
                "mlflow_pyfunc_p50_ms": pct(ys, 50),
                "mlflow_pyfunc_p99_ms": pct(ys, 99),
                "pyfunc_calls": len(ys),
            }
            print(
                f"latency {fam:6s} Predictor p50 {lat[fam]['predictor_p50_ms']:.3f} ms p99"
                f" {lat[fam]['predictor_p99_ms']:.3f} ms | mlflow pyfunc p50 {lat[fam]['mlflow_pyfunc_p50_ms']:.3f} ms"
                f" p99 {lat[fam]['mlflow_pyfunc_p99_ms']:.3f} ms",
                flush=True,
            )
    res["latency"] = lat
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1, default=float))
    print(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
